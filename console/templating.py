"""The console's one template language for customer emails: Jinja, sandboxed.

Staff write email templates (``email_templates``) in Jinja syntax: ``{{ order_number }}``,
``{% if reason %}…{% endif %}``, filters such as ``{{ first_name|title }}``. They are
rendered in Jinja's immutable sandbox, with HTML autoescaped in the HTML body only
(never in the subject or the text body), and with the work a template may do bounded:

- no ``{% include %}``, ``{% import %}``, ``{% from %}`` or ``{% extends %}`` (there is
  nothing to load: a template stands alone), no access to the app's ``config`` or to
  anything but the variables given;
- no unsafe attributes (``__class__``, ``mro``, …; the sandbox's own rule), and on text
  only the string methods that cannot grow it (``upper``, ``split``, …);
- a budget per render: template lines run (loops), time, characters made by operators,
  filters and calls, and the length of what is written. A template that runs out is
  refused with a message, never left to spin or fill memory.

``check()`` reads a template's syntax tree for problems worth refusing on save (a
syntax error with its line, a forbidden tag, a variable used but not declared);
``render_email()`` renders a template's three parts, or raises RenderError.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache

from jinja2 import TemplateError, TemplateSyntaxError, Undefined, meta, nodes
from jinja2.compiler import CodeGenerator
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

# The budget of one render (all three parts of an email share it).
MAX_STEPS = 200_000        # template lines run: bounds loops
TIME_LIMIT = 1.0           # seconds
MAX_VALUE = 100_000        # characters (or items) of any one value made while rendering
MAX_WORK = 2_000_000       # characters made in all by operators, filters and calls
MAX_OUTPUT = 200_000       # characters one part of an email may come to
MAX_SUBJECT = 500          # characters of a rendered subject
MAX_SOURCE = 100_000       # characters of one part's template text

PARTS = {"subject": "Subject", "body_html": "HTML body", "body_text": "Text body"}

# Filters a template may use. Each is wrapped so that it counts against the budget and
# cannot be asked for an enormous result (a width of a billion, say).
ALLOWED_FILTERS = (
    "abs", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape", "first",
    "float", "forceescape", "groupby", "indent", "int", "items", "join", "last", "length", "list", "lower",
    "map", "max", "min", "reject", "rejectattr", "replace", "reverse", "round", "select", "selectattr",
    "slice", "sort", "string", "striptags", "sum", "title", "trim", "truncate", "unique", "upper",
    "urlencode", "wordcount", "wordwrap",
)
# Methods of text a template may call: none of them can make the text much longer.
STR_METHODS = frozenset({
    "capitalize", "casefold", "count", "endswith", "find", "index", "isalnum", "isalpha", "isdigit",
    "islower", "isspace", "istitle", "isupper", "lower", "lstrip", "partition", "removeprefix",
    "removesuffix", "rfind", "rindex", "rpartition", "rsplit", "rstrip", "split", "splitlines",
    "startswith", "strip", "swapcase", "title", "upper",
})
FORBIDDEN_TAGS = {nodes.Include: "include", nodes.Import: "import", nodes.FromImport: "from … import",
                  nodes.Extends: "extends"}
# Names a template may use without declaring them: the language's own.
BUILTIN_NAMES = frozenset({"range", "dict", "namespace", "cycler", "joiner", "loop", "caller", "self",
                           "varargs", "kwargs"})


class RenderError(Exception):
    """A template that cannot be rendered: ``message`` says why, for the staff member."""

    def __init__(self, message: str, part: str | None = None, line: int | None = None):
        where = ", ".join(w for w in (PARTS.get(part or "", part or ""), f"line {line}" if line else "") if w)
        super().__init__(f"{where}: {message}" if where else message)
        self.message = f"{where}: {message}" if where else message
        self.part = part
        self.line = line


class _OverBudget(SecurityError):
    pass


class _Budget:
    def __init__(self):
        self.steps = 0
        self.work = 0
        self.deadline = time.perf_counter() + TIME_LIMIT

    def step(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > MAX_STEPS:
            raise _OverBudget(f"the template runs too long (more than {MAX_STEPS:,} steps): "
                              "look for a loop that never ends or loops inside loops")
        if self.steps % 64 == 0 and time.perf_counter() > self.deadline:
            raise _OverBudget(f"the template took longer than {TIME_LIMIT:g} s to render")

    def charge(self, value):
        size = _size(value)
        if size > MAX_VALUE:
            raise _OverBudget(f"a value grew beyond {MAX_VALUE:,} characters")
        self.work += size
        if self.work > MAX_WORK:
            raise _OverBudget(f"the template makes more than {MAX_WORK:,} characters of text while rendering")
        self.step()
        return value


_budget: ContextVar[_Budget | None] = ContextVar("template_budget", default=None)


def _size(value) -> int:
    if isinstance(value, (str, list, tuple, dict, set, frozenset)):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() // 32
    return 0


def _charge(value):
    budget = _budget.get()
    if budget is not None:
        return budget.charge(value)
    if _size(value) > MAX_VALUE:
        raise _OverBudget(f"a value grew beyond {MAX_VALUE:,} characters")
    return value


def _refuse_big_numbers(args: Iterable) -> None:
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_VALUE:
            raise _OverBudget(f"numbers given to filters and calls stay under {MAX_VALUE:,}")


def _bounded_filter(name: str, function):
    # Filters that Jinja hands the environment or context come first take it as args[0].
    offset = 1 if hasattr(function, "jinja_pass_arg") else 0

    def bounded(*args, **kwargs):
        head, given = args[:offset], args[offset:]
        _refuse_big_numbers([*given[1:], *kwargs.values()])
        if name == "indent":
            width = given[1] if len(given) > 1 else kwargs.get("width", 4)
            if len(width) if isinstance(width, str) else width > 100:
                raise _OverBudget("indent by at most 100")
        if name == "replace" and len(given) >= 3:
            text, old, new = str(given[0]), str(given[1]), str(given[2])
            grows = text.count(old) * max(0, len(new) - len(old)) if old else (len(text) + 1) * len(new)
            if len(text) + grows > MAX_VALUE:
                raise _OverBudget(f"a value grew beyond {MAX_VALUE:,} characters")
        if name == "join" and given:
            items = _charge(list(given[0]))
            separator = given[1] if len(given) > 1 else kwargs.get("d", "")
            if len(str(separator)) * len(items) > MAX_VALUE:
                raise _OverBudget(f"a value grew beyond {MAX_VALUE:,} characters")
            given = (items, *given[1:])
        return _charge(function(*head, *given, **kwargs))

    if offset:
        bounded.jinja_pass_arg = function.jinja_pass_arg
    bounded.__name__ = f"bounded_{name}"
    return bounded


class _BoundedCodeGenerator(CodeGenerator):
    def visit_Concat(self, node: nodes.Concat, frame) -> None:
        # ``a ~ b``: the parts are measured before they are joined.
        if frame.eval_ctx.volatile:
            func_name = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            func_name = "markup_join"
        else:
            func_name = "str_join"
        self.write(f"environment.bounded_concat({func_name}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def _plain(value):
    """What ``{{ value }}`` writes for a function or class: its name, not Python's repr
    with a memory address (``{{ range }}`` writes ``range``)."""
    if callable(value) and not isinstance(value, (str, bytes, Undefined)):
        name = getattr(value, "__name__", None) or type(value).__name__
        return {"safe_range": "range"}.get(name, name.removeprefix("bounded_"))
    return value


class MailSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with the console's limits (see the module's text)."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"+", "*", "**", "%", "//"})

    def __init__(self, *, html: bool):
        super().__init__(autoescape=html, loader=None, keep_trailing_newline=True, auto_reload=False,
                         finalize=_plain)
        self.globals = {name: self.globals[name] for name in ("range", "dict", "namespace", "cycler", "joiner")}
        self.filters = {name: _bounded_filter(name, self.filters[name]) for name in ALLOWED_FILTERS}
        string = self.filters["string"]
        self.filters["string"] = lambda value: string(_plain(value))

    def is_safe_attribute(self, obj, attr: str, value) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        if isinstance(obj, str):
            return attr in STR_METHODS
        return True

    def unsafe_undefined(self, obj, attribute):
        # Refused outright, rather than rendered as nothing, so the author sees why.
        raise SecurityError(f"{type(obj).__name__}.{attribute} is not available in email templates")

    def wrap_str_format(self, value):
        # str.format and format_map can pad to any width: not offered (see STR_METHODS).
        return None

    def call_binop(self, context, operator: str, left, right):
        if operator == "%" and isinstance(left, str):
            raise SecurityError("% formatting of text is not available: join text with ~")
        if operator == "**":
            if isinstance(right, int) and abs(right) > 1000 or _size(left) > 1:
                raise _OverBudget("powers stay under 1000 and small numbers")
        if operator == "*":
            if isinstance(left, int) and isinstance(right, int) and not isinstance(left, bool):
                if left.bit_length() + right.bit_length() > 64 * 1024:
                    raise _OverBudget("numbers stay under 65,536 bits")
            elif isinstance(right, int) and _size(left) * max(right, 0) > MAX_VALUE \
                    or isinstance(left, int) and _size(right) * max(left, 0) > MAX_VALUE:
                raise _OverBudget(f"a value grew beyond {MAX_VALUE:,} characters")
        if operator == "+" and _size(left) + _size(right) > MAX_VALUE:
            raise _OverBudget(f"a value grew beyond {MAX_VALUE:,} characters")
        return _charge(super().call_binop(context, operator, left, right))

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (Jinja's own signature)
        _refuse_big_numbers([*args, *kwargs.values()])
        return _charge(super().call(__context, __obj, *args, **kwargs))

    def bounded_concat(self, join, parts: tuple):
        texts = [part if isinstance(part, str) else str(part) for part in parts]
        if sum(len(t) for t in texts) > MAX_VALUE:
            raise _OverBudget(f"a value grew beyond {MAX_VALUE:,} characters")
        return _charge(join(parts))


_ENVIRONMENTS = {True: MailSandbox(html=True), False: MailSandbox(html=False)}


# --- reading a template ----------------------------------------------------------------------

# Blocks ({% if %}, {% for %}, …) nested deeper than this are refused on reading: Python
# compiles at most 20 nested loops, and no email needs more than a few levels.
MAX_BLOCK_DEPTH = 12
TOO_DEEP = (f"blocks are nested too deeply: keep {{% if %}}, {{% for %}} and the like under "
            f"{MAX_BLOCK_DEPTH} levels, and brackets under 100")
_BLOCKS = (nodes.If, nodes.For, nodes.Macro, nodes.CallBlock, nodes.FilterBlock, nodes.With, nodes.Block,
           nodes.AssignBlock, nodes.ScopedEvalContextModifier)


def _block_depth(tree: nodes.Node) -> int:
    deepest, stack = 0, [(tree, 0)]
    while stack:  # iterative: a deep tree must not overflow the stack here either
        node, depth = stack.pop()
        if isinstance(node, _BLOCKS):
            depth += 1
            deepest = max(deepest, depth)
        stack.extend((child, depth) for child in node.iter_child_nodes())
    return deepest


def _parse(source: str, part: str) -> nodes.Template:
    if len(source) > MAX_SOURCE:
        raise RenderError(f"keep it under {MAX_SOURCE:,} characters", part)
    if "\x00" in source:
        raise RenderError("it contains a NUL character; remove it", part)
    try:
        tree = _ENVIRONMENTS[part == "body_html"].parse(source)
    except TemplateSyntaxError as exc:
        raise RenderError(exc.message or "syntax error", part, exc.lineno) from None
    except (RecursionError, MemoryError):
        raise RenderError(TOO_DEEP, part) from None
    if _block_depth(tree) > MAX_BLOCK_DEPTH:
        raise RenderError(TOO_DEEP, part)
    for node_type, tag in FORBIDDEN_TAGS.items():
        for node in tree.find_all(node_type):
            raise RenderError(f"{{% {tag} %}} is not available: an email template stands alone", part,
                              node.lineno)
    return tree


def variables_used(source: str, part: str = "body_text") -> set[str]:
    """The variables a template reads, from its syntax tree (RenderError if it can't be
    read); read in a child process (console/render_pool.py)."""
    from console import render_pool

    return set(render_pool.ask(("variables", source, part), part=part))


def variables_used_here(source: str, part: str = "body_text") -> set[str]:
    """variables_used() in this process: only console/render_pool.py's children call it."""
    tree = _parse(source, part)
    try:
        return set(meta.find_undeclared_variables(tree)) - BUILTIN_NAMES
    except TemplateError as exc:  # an unknown filter or test, say
        raise RenderError(exc.message or str(exc), part, getattr(exc, "lineno", None)) from None


def check(parts: Mapping[str, str], declared: Iterable[str]) -> list[str]:
    """What is wrong with a template's parts ({"subject": …, "body_html": …,
    "body_text": …}) given its declared variable names: one message per problem. Read in
    a child process (console/render_pool.py): a template that can't even be read in
    time or memory is one problem more."""
    from console import render_pool

    parts = {part: parts.get(part) or "" for part in PARTS}
    try:
        return render_pool.ask(("check", parts, sorted(set(declared))))
    except RenderError as exc:
        return [exc.message]


def check_here(parts: Mapping[str, str], declared: Iterable[str]) -> list[str]:
    """check() in this process: only console/render_pool.py's children call it."""
    declared = set(declared)
    problems = []
    for part, label in PARTS.items():
        source = parts.get(part) or ""
        try:
            _compiled(source, part)
            used = variables_used_here(source, part)
        except RenderError as exc:
            problems.append(exc.message)
            continue
        undeclared = sorted(used - declared)
        if undeclared:
            names = ", ".join(undeclared)
            problems.append(f"{label} uses {names}, which {'is' if len(undeclared) == 1 else 'are'} not declared: "
                            "declare it below (with a description and a sample value) or take it out.")
    return problems


# --- rendering -------------------------------------------------------------------------------

@lru_cache(maxsize=128)
def _compiled(source: str, part: str):
    tree = _parse(source, part)
    try:
        return _ENVIRONMENTS[part == "body_html"].from_string(tree)
    except TemplateError as exc:  # an unknown filter or test, say
        raise RenderError(exc.message or str(exc), part, getattr(exc, "lineno", None)) from None
    except SecurityError as exc:  # a constant expression over the limits
        raise RenderError(f"not allowed: {exc}", part) from None
    except (RecursionError, SyntaxError, MemoryError):  # SyntaxError: Python's own nesting limits
        raise RenderError(TOO_DEEP, part) from None


def _tracer(budget: _Budget):
    # Counts the lines run in template code (Jinja compiles a template to Python whose
    # file name is "<template>"); other code runs untraced.
    def local(frame, event, arg):
        if event == "line":
            budget.step()
        return local

    def calls(frame, event, arg):
        if frame.f_code.co_filename == "<template>":
            budget.step()
            return local
        return None

    return calls


@dataclass
class RenderedEmail:
    subject: str
    body_html: str
    body_text: str


def _render_part(source: str, variables: Mapping, part: str) -> str:
    budget = _budget.get()
    template = _compiled(source, part)  # RenderError when it can't be read
    pieces, length = [], 0
    previous = sys.gettrace()
    sys.settrace(_tracer(budget))
    try:
        for piece in template.generate(**variables):
            length += len(piece)
            if length > MAX_OUTPUT:
                raise _OverBudget(f"it comes to more than {MAX_OUTPUT:,} characters")
            pieces.append(piece)
    except _OverBudget as exc:
        raise RenderError(str(exc), part) from None
    except RecursionError:
        raise RenderError("a macro calls itself without end", part) from None
    except SecurityError as exc:
        raise RenderError(f"not allowed: {exc}", part) from None
    except TemplateError as exc:
        raise RenderError(exc.message or str(exc), part, getattr(exc, "lineno", None)) from None
    except (ArithmeticError, ValueError, TypeError, LookupError, AttributeError) as exc:
        raise RenderError(f"{type(exc).__name__}: {exc}", part) from None
    finally:
        sys.settrace(previous)
    return "".join(pieces)


def render_email(subject: str | None, body_html: str | None, body_text: str | None,
                 variables: Mapping) -> RenderedEmail:
    """The three parts rendered with ``variables``, within one budget of steps, time and
    memory; RenderError when a part can't be rendered (its message says which part and
    why). Rendered in a child process (console/render_pool.py), which is stopped when
    it runs out of time or memory."""
    from console import render_pool

    subject, body_html, body_text = render_pool.ask(
        ("render", subject or "", body_html or "", body_text or "", dict(variables)))
    return RenderedEmail(subject, body_html, body_text)


def render_email_here(subject: str | None, body_html: str | None, body_text: str | None,
                      variables: Mapping) -> RenderedEmail:
    """render_email() in this process: only console/render_pool.py's children call it."""
    token = _budget.set(_Budget())
    try:
        rendered_subject = _render_part(subject or "", variables, "subject")
        rendered_subject = " ".join(rendered_subject.split())  # one line: no header injection
        if len(rendered_subject) > MAX_SUBJECT:
            raise RenderError(f"it comes to more than {MAX_SUBJECT} characters", "subject")
        return RenderedEmail(rendered_subject, _render_part(body_html or "", variables, "body_html"),
                             _render_part(body_text or "", variables, "body_text"))
    finally:
        _budget.reset(token)


def render_text(source: str, variables: Mapping) -> str:
    """One text template (no autoescaping), within a budget of its own."""
    return render_email("", "", source, variables).body_text

