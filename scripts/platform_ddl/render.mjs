// Renders tests/fixtures/platform/ddl/<svc>.sql from tests/fixtures/platform/prisma/<svc>.prisma
// with Prisma's own schema engine (its WebAssembly build, so nothing is downloaded at run time):
// the engine's diff from an empty database to the schema, as a script -- what
// `prisma migrate diff --from-empty --to-schema <file> --script` prints.
//
//   cd scripts/platform_ddl && npm ci && node render.mjs           # rewrite the fixtures
//   node render.mjs --check                                       # exit 1 if any differs
//
// The engine connects to a PostgreSQL server when it starts (RENDER_DDL_DATABASE_URL, by
// default the local server's postgres database); a diff from empty to a schema file reads
// and writes nothing there.
import { readFile, readdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as bindings from "@prisma/schema-engine-wasm/schema_engine_bg";
import { PrismaPg } from "@prisma/adapter-pg";
import { bindMigrationAwareSqlAdapterFactory } from "@prisma/driver-adapter-utils";

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, "..", "..", "tests", "fixtures", "platform");
const check = process.argv.includes("--check");

// The package's entry point imports the .wasm file as an ES module, which Node does not do:
// instantiate it here and hand it to the generated bindings instead.
const wasmPath = join(here, "node_modules", "@prisma", "schema-engine-wasm", "schema_engine_bg.wasm");
const { instance } = await WebAssembly.instantiate(await readFile(wasmPath),
                                                   { "./schema_engine_bg.js": bindings });
bindings.__wbg_set_wasm(instance.exports);
instance.exports.__wbindgen_start();

const adapter = bindMigrationAwareSqlAdapterFactory(
  new PrismaPg({ connectionString: process.env.RENDER_DDL_DATABASE_URL ?? "postgresql://root@127.0.0.1:5432/postgres" }));

let differs = 0;
for (const file of (await readdir(join(fixtures, "prisma"))).filter((f) => f.endsWith(".prisma")).sort()) {
  const content = await readFile(join(fixtures, "prisma", file), "utf8");
  const engine = await bindings.SchemaEngine.new({ datamodels: [[file, content]] }, () => {}, adapter);
  const { stdout } = await engine.diff({
    from: { tag: "empty" },
    to: { tag: "schemaDatamodel", files: [{ path: file, content }] },
    shadowDatabaseUrl: null, script: true, exitCode: null, filters: { externalTables: [], externalEnums: [] },
  });
  const target = join(fixtures, "ddl", file.replace(/\.prisma$/, ".sql"));
  if (check) {
    const committed = await readFile(target, "utf8");
    if (committed !== stdout) { differs += 1; console.log(`differs: ${target}`); }
    else console.log(`same: ${target}`);
  } else {
    await writeFile(target, stdout);
    console.log(`wrote ${target}`);
  }
}
process.exit(differs ? 1 : 0);
