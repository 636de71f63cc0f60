"""Benchmark: the notification log and the templates list at scale.

Fills scratch databases (SQLite files in a temporary folder, or PostgreSQL with
--postgres) with N notifications from the workflows' templates (one in twelve failed
or bounced, with their provider logs), then prints, for each screen, the SQL
statements and the median time of a request:

- the notification log: first page, failed only, a keyset page deep in the list;
- the templates list, whose uses and failures in the last 30 days are one grouped
  query over notifications per page;
- the Resend all confirmation (a count capped at 1,000);

and, on PostgreSQL, the index scans in the plan of the templates list's usage query.

    .venv/bin/python scripts/bench_notifications.py --notifications 200000
    .venv/bin/python scripts/bench_notifications.py --notifications 200000 --postgres
"""
from __future__ import annotations

import argparse
import random
import re
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, insert, select, text  # noqa: E402

from config import BIND_KEYS, bind_config  # noqa: E402
from scripts.benchlib import median_ms, scratch_urls  # noqa: E402


def fill(db, n: int, n_customers: int = 2000) -> None:
    from console.email_templates import install
    from console.models.auth import User
    from console.models.notification import (NOTIFICATION_STATUSES as STATUS, NOTIFICATION_TYPES, EmailTemplate,
                                             Notification, NotificationLog)

    rng = random.Random(11)
    now = datetime.now(timezone.utc)
    users = [{"id": str(uuid.UUID(int=rng.getrandbits(128))), "email": f"customer{i}@example.com",
              "is_active": True, "created_at": now} for i in range(n_customers)]
    db.session.execute(insert(User.__table__), users)
    install()
    db.session.commit()
    templates = list(db.session.execute(select(EmailTemplate.id, EmailTemplate.name, EmailTemplate.subject)))
    batch = 5000
    for start in range(0, n, batch):
        rows, logs = [], []
        for i in range(start, min(start + batch, n)):
            template = templates[i % len(templates)]
            created = now - timedelta(minutes=i)
            status = (STATUS.FAILED if i % 12 == 5 else STATUS.BOUNCED if i % 40 == 9
                      else rng.choice((STATUS.SENT, STATUS.DELIVERED)))
            notification_id = str(uuid.UUID(int=rng.getrandbits(128)))
            rows.append({"id": notification_id, "user_id": users[i % n_customers]["id"], "type": NOTIFICATION_TYPES.EMAIL,
                         "template_id": template.id, "subject": template.subject.replace("{{ order_number }}", f"ORD-{i}"),
                         "body": "Hello", "status": status, "metadata": {"template": template.name, "key": f"k{i}"},
                         "created_at": created, "updated_at": created})
            logs.append({"id": str(uuid.uuid4()), "notification_id": notification_id, "status": status,
                         "provider": "smtp", "provider_response": {},
                         "error": "550 mailbox unavailable" if status in (STATUS.FAILED, STATUS.BOUNCED) else None,
                         "created_at": created})
        db.session.execute(insert(Notification.__table__), rows)
        db.session.execute(insert(NotificationLog.__table__), logs)
        db.session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notifications", type=int, default=50000)
    parser.add_argument("--postgres", action="store_true", help="use scratch PostgreSQL databases")
    args = parser.parse_args()

    urls, drop = scratch_urls(args.postgres)
    from console import create_app
    from console.demo.builders import make_staff
    from console.extensions import db

    app = create_app("testing", {"SQLALCHEMY_BINDS": {k: bind_config(u) for k, u in urls.items()},
                                 "SQLALCHEMY_RECORD_QUERIES": False})
    try:
        with app.app_context():
            db.create_all(bind_key=list(BIND_KEYS))
            started = time.perf_counter()
            fill(db, args.notifications)
            make_staff("admin", "bench@example.com", "Bench-password-1")
            db.session.commit()
            if args.postgres:
                # What autovacuum does on a live database: statistics and the visibility map
                # (without it no index-only scan skips the table).
                with db.engines["notification"].connect() as conn:
                    conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
            print(f"backend: {'postgresql' if args.postgres else 'sqlite'}; filled {args.notifications:,} "
                  f"notifications in {time.perf_counter() - started:.1f} s")
            engines = list(db.engines.values())
        client = app.test_client()
        client.post("/login", data={"email": "bench@example.com", "password": "Bench-password-1"})

        # A page deep in the log: follow Next links from the first page.
        url = "/notifications?size=200"
        for _ in range(20):
            html = client.get(url).get_data(as_text=True)
            found = re.search(r'id="notifications-next" href="([^"]+)"', html)
            if not found:
                break
            url = found.group(1).replace("&amp;", "&")
        deep = url

        statements = []

        def count(*_args):
            statements.append(1)

        for engine in engines:
            event.listen(engine, "before_cursor_execute", count)
        for label, path in (("log, first page of 50", "/notifications"),
                            ("log, failed or bounced", "/notifications?status=failed"),
                            ("log, a template and a customer", "/notifications?template=order_shipped&customer=customer7@"),
                            ("log, 20 pages of 200 deep", deep),
                            ("templates list (uses, failures)", "/templates"),
                            ("resend all: the count to confirm", "/notifications/resend-all?status=failed")):
            statements.clear()
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            queries = len(statements)
            ms = median_ms(lambda: client.get(path))
            print(f"  {label:<36} {queries:>3} SQL statements, median {ms:8.1f} ms")
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)

        if args.postgres:
            with app.app_context():
                from console.models.notification import EmailTemplate
                from console.screens import templates as screens

                ids = list(db.session.scalars(select(EmailTemplate.id)))
                plans = []
                engine = db.engines["notification"]

                def capture(conn, cursor, statement, parameters, context, executemany):
                    if "UNION ALL" in statement and not statement.startswith("EXPLAIN"):
                        plans.append((statement, parameters))

                event.listen(engine, "before_cursor_execute", capture)
                screens.usage(ids)
                event.remove(engine, "before_cursor_execute", capture)
                statement, parameters = plans[0]
                with engine.connect() as conn:
                    plan = conn.exec_driver_sql("EXPLAIN " + statement, parameters).scalars().all()
                scans = sorted({re.sub(r" notifications_\d+", "", line.strip().lstrip("-> ").split("  (")[0])
                                for line in plan if "Index" in line and "Scan" in line})
                print("\nusage query (one per page, per template the newest 10,001 at most): " + "; ".join(scans))
    finally:
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()
        drop()


if __name__ == "__main__":
    main()
