"""The hook pages in ``docs/hooks/`` agree with the hook specs in ``waimai_bridge.hookspecs``.

For every hook spec (a function carrying pluggy's ``waimai_bridge_spec`` marker) there is a
page ``docs/hooks/<hook>.md`` whose

- ``## Signature`` holds exactly one python block, the spec's ``def`` (with its decorator):
  name, parameters with their kinds and defaults, annotations and return annotation are
  compared with the code as ``ast.unparse`` text (``hookspecs`` uses postponed annotations,
  so text is what both sides are);
- ``## Arguments`` has one top-level bullet per parameter, in order;
- ``## Errors`` names the exceptions of the spec's ``:raises:`` lines, and ``## Contract``
  the schema files its docstring names (and only files that exist);
- ``## Example`` runs: it imports from the core only ``waimai_bridge.plugin_api``, executes
  in a fresh module, and defines a ``@hookimpl`` for the hook that pluggy accepts for the
  spec (a hook without arguments is also called and its result validated).

No page documents a hook that does not exist, the index links to every page, and every link
resolves. The tests at the end prove that these checks fail, naming the hook and showing the
documented and the code signature, when the docs and the code disagree.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import re
import shutil
import sys
import textwrap
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pluggy
import pytest
from pydantic import TypeAdapter

import waimai_bridge.contracts
from waimai_bridge import hookspecs

DOCS = Path(__file__).resolve().parent.parent / "docs" / "hooks"
CONTRACTS = Path(waimai_bridge.contracts.__file__).resolve().parent
SECTIONS = (
    "Signature",
    "When it is called",
    "Arguments",
    "Returns",
    "Errors",
    "Contract",
    "Example",
)
"""The sections of a hook page, in this order (a page may have more)."""

SPEC_MARKER = hookspecs.PROJECT_NAME + "_spec"
IMPL_MARKER = hookspecs.PROJECT_NAME + "_impl"
PLUGIN_API = "waimai_bridge.plugin_api"
BACKBONE = {"plugin_manifest", "parse_event", "map_state", "price_breakdown", "outbound_action"}


def _spec_functions() -> dict[str, Callable[..., object]]:
    return {
        name: fn
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if getattr(fn, SPEC_MARKER, None) is not None
    }


SPECS = _spec_functions()
HOOKS = sorted(SPECS)


# --------------------------------------------------------------------------- markdown


@dataclass
class CodeBlock:
    info: str
    source: str
    line: int
    """The page's line number of the block's first line of code."""

    @property
    def is_python(self) -> bool:
        return self.info.lower() in {"python", "py", "python3"}


@dataclass
class Section:
    title: str
    line: int
    text: list[str] = field(default_factory=list)
    """The section's lines outside code blocks."""
    blocks: list[CodeBlock] = field(default_factory=list)


@dataclass
class Page:
    path: Path
    title: str | None
    sections: list[Section]
    preamble: Section

    @property
    def name(self) -> str:
        return f"docs/hooks/{self.path.name}"

    def section(self, title: str) -> Section:
        found = [section for section in self.sections if section.title == title]
        assert found, f"{self.name} has no '## {title}' section"
        return found[0]

    def all_blocks(self) -> list[CodeBlock]:
        return [block for section in (self.preamble, *self.sections) for block in section.blocks]


FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")
BULLET = re.compile(r"^[-*] +`(?P<name>\w+)`")
LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")
SCHEMA_FILE = re.compile(r"[\w-]+\.schema\.json")
RAISES = re.compile(r":raises (?P<name>\w+):")


def parse_page(path: Path) -> Page:
    """Split a markdown page into its ``# title`` and ``## sections``, code blocks apart."""
    preamble = Section("", 0)
    title: str | None = None
    sections: list[Section] = []
    current = preamble
    fence: str | None = None
    info, start, code = "", 0, list[str]()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if fence is not None:
            stripped = line.strip()
            if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
                current.blocks.append(CodeBlock(info, "\n".join(code) + "\n", start))
                fence = None
            else:
                code.append(line)
            continue
        if match := FENCE.match(line):
            fence, info, start, code = match["fence"], match["info"], number + 1, []
        elif line.startswith("# ") and title is None and not sections:
            title = line[2:].strip()
        elif line.startswith("## "):
            current = Section(line[3:].strip(), number)
            sections.append(current)
        else:
            current.text.append(line)
    assert fence is None, f"{path}: the code block opened at line {start - 1} is never closed"
    return Page(path, title, sections, preamble)


def load_page(docs: Path, hook: str) -> Page:
    path = docs / f"{hook}.md"
    assert path.is_file(), (
        f"hook spec {hook!r} (waimai_bridge/hookspecs.py) has no page: write docs/hooks/{hook}.md"
    )
    return parse_page(path)


def hook_pages(docs: Path) -> list[Path]:
    return sorted(path for path in docs.glob("*.md") if path.name != "README.md")


# --------------------------------------------------------------------------- signatures


def spec_def(hook: str) -> ast.FunctionDef:
    """The spec's ``def`` as the code has it, decorators included."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(SPECS[hook])))
    node = tree.body[0]
    assert isinstance(node, ast.FunctionDef), f"hook spec {hook!r} is not a plain def"
    return node


def parameters(args: ast.arguments) -> list[tuple[str, ast.arg, ast.expr | None]]:
    """``(kind, arg, default)`` of every parameter, in order."""
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    defaults += args.defaults
    found: list[tuple[str, ast.arg, ast.expr | None]] = []
    for index, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
        kind = "positional-only" if index < len(args.posonlyargs) else "positional-or-keyword"
        found.append((kind, arg, default))
    if args.vararg is not None:
        found.append(("var-positional", args.vararg, None))
    found += [
        ("keyword-only", arg, default)
        for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True)
    ]
    if args.kwarg is not None:
        found.append(("var-keyword", args.kwarg, None))
    return found


def signature_lines(fn: ast.FunctionDef) -> list[str]:
    """The signature as comparable lines: decorators, name, one line per parameter, return."""
    lines = [f"@{ast.unparse(decorator)}" for decorator in fn.decorator_list]
    lines.append(f"def {fn.name}(")
    for kind, arg, default in parameters(fn.args):
        star = {"var-positional": "*", "var-keyword": "**"}.get(kind, "")
        text = star + arg.arg
        if arg.annotation is not None:
            text += f": {ast.unparse(arg.annotation)}"
        if default is not None:
            text += f" = {ast.unparse(default)}"
        lines.append(f"    {text},  # {kind}")
    returns = ast.unparse(fn.returns) if fn.returns is not None else "<no return annotation>"
    lines.append(f") -> {returns}")
    return lines


def one_line(fn: ast.FunctionDef) -> str:
    decorators = "".join(f"@{ast.unparse(decorator)} " for decorator in fn.decorator_list)
    returns = f" -> {ast.unparse(fn.returns)}" if fn.returns is not None else ""
    return f"{decorators}def {fn.name}({ast.unparse(fn.args)}){returns}"


def check_signature(docs: Path, hook: str) -> None:
    page = load_page(docs, hook)
    section = page.section("Signature")
    where = f"{page.name}, '## Signature' (line {section.line})"
    expected = spec_def(hook)
    assert [block.is_python for block in section.blocks] == [True], (
        f"hook {hook!r}: {where} must hold exactly one ```python block, found "
        f"{[block.info or '(no language)' for block in section.blocks]}; it should read\n"
        f"    {one_line(expected)}: ..."
    )
    block = section.blocks[0]
    try:
        tree = ast.parse(block.source)
    except SyntaxError as exc:
        raise AssertionError(
            f"hook {hook!r}: the signature in {where} is not valid Python: {exc}"
        ) from exc
    documented = tree.body[0] if len(tree.body) == 1 else None
    assert isinstance(documented, ast.FunctionDef), (
        f"hook {hook!r}: the signature block in {where} must hold exactly one def (with its "
        f"decorator) and nothing else; it should read\n    {one_line(expected)}: ..."
    )
    documented_lines, expected_lines = signature_lines(documented), signature_lines(expected)
    diff = "\n".join(
        difflib.unified_diff(
            expected_lines,
            documented_lines,
            "waimai_bridge/hookspecs.py",
            f"{page.name} (line {block.line})",
            lineterm="",
        )
    )
    assert documented_lines == expected_lines, (
        f"hook {hook!r}: the signature documented in {page.name} differs from the spec in "
        f"waimai_bridge/hookspecs.py\n"
        f"  documented:  {one_line(documented)}\n"
        f"  in the code: {one_line(expected)}\n"
        f"{diff}"
    )


# --------------------------------------------------------------------------- page checks


def check_layout(docs: Path, hook: str) -> None:
    page = load_page(docs, hook)
    assert page.title == hook, f"{page.name} must start with '# {hook}', not {page.title!r}"
    titles = [section.title for section in page.sections]
    missing = [title for title in SECTIONS if title not in titles]
    assert not missing, f"{page.name} lacks the sections {missing}"
    ordered = [title for title in titles if title in SECTIONS]
    assert ordered == list(SECTIONS), (
        f"{page.name}: the sections must come once each, in the order {list(SECTIONS)}; "
        f"found {ordered}"
    )


def check_arguments(docs: Path, hook: str) -> None:
    page = load_page(docs, hook)
    section = page.section("Arguments")
    listed = [match["name"] for line in section.text if (match := BULLET.match(line))]
    spec_params = [arg.arg for _, arg, _ in parameters(spec_def(hook).args)]
    assert listed == spec_params, (
        f"hook {hook!r}: '## Arguments' of {page.name} lists {listed}, the spec's parameters "
        f"are {spec_params} (one top-level bullet per parameter, in order, starting with the "
        "name in backticks)"
    )


def check_errors_and_contract(docs: Path, hook: str) -> None:
    page = load_page(docs, hook)
    docstring = inspect.getdoc(SPECS[hook]) or ""
    errors = "\n".join(page.section("Errors").text)
    unnamed = [match["name"] for match in RAISES.finditer(docstring) if match["name"] not in errors]
    assert not unnamed, (
        f"hook {hook!r}: the spec raises {unnamed}, which '## Errors' of {page.name} "
        "does not mention"
    )
    contract = "\n".join(page.section("Contract").text)
    schemas = sorted(set(SCHEMA_FILE.findall(docstring)) - set(SCHEMA_FILE.findall(contract)))
    assert not schemas, (
        f"hook {hook!r}: the spec is checked against {schemas}, which '## Contract' of "
        f"{page.name} does not name"
    )
    text = page.path.read_text(encoding="utf-8")
    unknown = sorted(
        {name for name in SCHEMA_FILE.findall(text) if not (CONTRACTS / name).is_file()}
    )
    assert not unknown, f"{page.name} names schema files that do not exist: {unknown}"


def check_imports(tree: ast.Module, where: str) -> None:
    """An example imports from the core only the plugin API, like a plugin must."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [("." * node.level) + (node.module or "")]
        else:
            continue
        for module in modules:
            from_core = module == "waimai_bridge" or module.startswith("waimai_bridge.")
            assert module == PLUGIN_API or not from_core, (
                f"{where} (line {node.lineno}) imports {module}: a plugin imports only "
                f"{PLUGIN_API} from the core"
            )


def run_block(page: Page, block: CodeBlock, module_name: str) -> types.ModuleType:
    """Compile and execute a block in a fresh module; line numbers are the page's."""
    where = f"{page.name}, example at line {block.line}"
    source = "\n" * (block.line - 1) + block.source
    try:
        code = compile(source, str(page.path), "exec")
    except SyntaxError as exc:
        raise AssertionError(f"{where}: the example does not compile: {exc}") from exc
    check_imports(ast.parse(source), where)
    module = types.ModuleType(module_name)
    sys.modules[module_name] = module  # for whatever looks the module up while it runs
    try:
        exec(code, module.__dict__)
    except Exception as exc:
        raise AssertionError(f"{where}: running the example raised {exc!r}") from exc
    finally:
        del sys.modules[module_name]
    return module


def check_example(docs: Path, hook: str) -> None:
    # Every block is executed, not just compiled. httpx is not a dependency of the core, so
    # the outbound_action example imports it inside the hook function: running the module
    # only defines the function and needs no httpx.
    page = load_page(docs, hook)
    section = page.section("Example")
    blocks = [block for block in section.blocks if block.is_python]
    assert blocks, f"'## Example' of {page.name} has no ```python block"
    implementations: list[types.ModuleType] = []
    for index, block in enumerate(blocks):
        where = f"{page.name}, example at line {block.line}"
        module = run_block(page, block, f"_docs_example_{hook}_{index}")
        impl = getattr(module, hook, None)
        if callable(impl):
            assert getattr(impl, IMPL_MARKER, None) is not None, (
                f"{where}: {hook}() must be decorated with @hookimpl"
            )
            implementations.append(module)
    assert implementations, (
        f"'## Example' of {page.name} must define a @hookimpl function named {hook}"
    )
    for module in implementations:
        manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        manager.add_hookspecs(hookspecs)
        try:
            manager.register(module, name=f"docs example of {hook}")
        except pluggy.PluginValidationError as exc:
            raise AssertionError(
                f"{page.name}: pluggy refuses the example's {hook}() for the spec: {exc}"
            ) from exc
        if not parameters(spec_def(hook).args):
            result = getattr(manager.hook, hook)()
            returns = typing.get_type_hints(SPECS[hook])["return"]
            TypeAdapter(returns).validate_python(result)


def links(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    return [match["target"] for match in LINK.finditer(text)]


def check_index(docs: Path) -> None:
    readme = docs / "README.md"
    assert readme.is_file(), "docs/hooks/README.md (the index of the hooks) is missing"
    linked = {
        target.split("#", 1)[0].removeprefix("./")
        for target in links(readme)
        if "://" not in target
    }
    unlinked = [page.name for page in hook_pages(docs) if page.name not in linked]
    assert not unlinked, f"docs/hooks/README.md does not link to {unlinked}"


def check_no_stale_pages(docs: Path) -> None:
    stale = [page.name for page in hook_pages(docs) if page.stem not in SPECS]
    assert not stale, (
        f"docs/hooks/ has pages for hooks that waimai_bridge/hookspecs.py does not define: "
        f"{stale} (hook specs: {HOOKS})"
    )


def check_links_resolve(page: Path) -> None:
    for target in links(page):
        if "://" in target or target.startswith(("#", "mailto:")):
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        assert path.exists(), f"docs/hooks/{page.name} links to {target}, which does not exist"


# --------------------------------------------------------------------------- the tests


def test_hook_specs_are_found() -> None:
    assert set(HOOKS) >= BACKBONE, (
        f"expected the hook specs {sorted(BACKBONE)} in waimai_bridge.hookspecs (functions "
        f"with the {SPEC_MARKER!r} marker), found {HOOKS}"
    )


@pytest.mark.parametrize("hook", HOOKS)
def test_page_has_the_sections(hook: str) -> None:
    check_layout(DOCS, hook)


@pytest.mark.parametrize("hook", HOOKS)
def test_documented_signature_is_the_spec(hook: str) -> None:
    check_signature(DOCS, hook)


@pytest.mark.parametrize("hook", HOOKS)
def test_arguments_are_the_spec_parameters(hook: str) -> None:
    check_arguments(DOCS, hook)


@pytest.mark.parametrize("hook", HOOKS)
def test_errors_and_contract_follow_the_spec(hook: str) -> None:
    check_errors_and_contract(DOCS, hook)


@pytest.mark.parametrize("hook", HOOKS)
def test_example_runs_and_implements_the_hook(hook: str) -> None:
    check_example(DOCS, hook)


def test_index_links_every_page() -> None:
    check_index(DOCS)


def test_every_page_documents_a_hook_spec() -> None:
    check_no_stale_pages(DOCS)


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda page: page.name)
def test_links_resolve_and_python_blocks_compile(page: Path) -> None:
    check_links_resolve(page)
    for block in parse_page(page).all_blocks():
        if block.is_python:
            source = "\n" * (block.line - 1) + block.source
            compile(source, str(page), "exec")


# --------------------------------------------------------------------------- the checks fail


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """A copy of docs/hooks/ to break."""
    return Path(shutil.copytree(DOCS, tmp_path / "hooks"))


def edit(docs: Path, page: str, section: str, old: str, new: str) -> None:
    """Replace ``old`` (which must be there) by ``new`` inside one section of a page."""
    path = docs / page
    text = path.read_text(encoding="utf-8")
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    end = len(text) if end == -1 else end
    body = text[start:end]
    assert old in body, f"{old!r} is not in '## {section}' of {page}"
    path.write_text(text[:start] + body.replace(old, new, 1) + text[end:], encoding="utf-8")


@pytest.mark.parametrize(
    ("hook", "old", "new", "shown"),
    [
        pytest.param(
            "parse_event",
            "request: InboundRequest",
            "req: InboundRequest",
            ["req: InboundRequest,", "request: InboundRequest,"],
            id="renamed-parameter",
        ),
        pytest.param(
            "price_breakdown",
            "order: NativeEvent",
            "order: dict[str, Any]",
            ["order: dict[str, Any],", "order: NativeEvent,"],
            id="changed-annotation",
        ),
        pytest.param(
            "map_state",
            "-> StateChange:",
            "-> StateChange | None:",
            [") -> StateChange | None", ") -> StateChange"],
            id="changed-return",
        ),
        pytest.param(
            "outbound_action",
            "platform: str, action",
            "platform: str, /, action",
            ["platform: str,  # positional-only", "platform: str,  # positional-or-keyword"],
            id="changed-kind",
        ),
        pytest.param(
            "parse_event",
            "config: PluginConfig\n",
            "\n",
            ["config: PluginConfig,"],
            id="missing-parameter",
        ),
        pytest.param(
            "plugin_manifest",
            "@hookspec(firstresult=True)\n",
            "",
            ["@hookspec(firstresult=True)"],
            id="missing-decorator",
        ),
    ],
)
def test_a_signature_mismatch_fails(
    docs: Path, hook: str, old: str, new: str, shown: list[str]
) -> None:
    edit(docs, f"{hook}.md", "Signature", old, new)
    with pytest.raises(AssertionError) as failure:
        check_signature(docs, hook)
    message = str(failure.value)
    assert f"hook {hook!r}" in message
    assert "documented:" in message
    assert "in the code:" in message
    for text in shown:
        assert text in message


def test_a_signature_section_with_two_blocks_fails(docs: Path) -> None:
    edit(docs, "map_state.md", "Signature", "```\n", "```\n\n```python\nx = 1\n```\n")
    with pytest.raises(AssertionError, match=r"hook 'map_state'.*exactly one ```python block"):
        check_signature(docs, "map_state")


def test_a_missing_page_fails(docs: Path) -> None:
    (docs / "map_state.md").unlink()
    with pytest.raises(AssertionError, match=r"'map_state' .*has no page"):
        check_signature(docs, "map_state")


def test_a_stale_page_fails(docs: Path) -> None:
    (docs / "fetch_menu.md").write_text("# fetch_menu\n", encoding="utf-8")
    with pytest.raises(AssertionError, match=r"fetch_menu\.md"):
        check_no_stale_pages(docs)


def test_an_index_without_a_link_fails(docs: Path) -> None:
    edit(docs, "README.md", "The hooks", "(map_state.md)", "")
    with pytest.raises(AssertionError, match=r"does not link to \['map_state\.md'\]"):
        check_index(docs)


def test_arguments_that_differ_from_the_spec_fail(docs: Path) -> None:
    edit(docs, "parse_event.md", "Arguments", "- `config`", "- the config")
    with pytest.raises(AssertionError, match=r"'parse_event'.*\['platform', 'request'\]"):
        check_arguments(docs, "parse_event")


@pytest.mark.parametrize(
    ("hook", "old", "new", "expected"),
    [
        pytest.param(
            "plugin_manifest",
            'NativeCode(code="order.created"',
            'NativeCode(kode="order.created"',
            "running the example raised",
            id="wrong-field-name",
        ),
        pytest.param(
            "map_state",
            "from waimai_bridge.plugin_api import (",
            "from waimai_bridge.models import (",
            "imports waimai_bridge.models",
            id="import-outside-the-plugin-api",
        ),
        pytest.param(
            "map_state",
            "def map_state(event: NativeEvent)",
            "def map_state(native: NativeEvent)",
            "pluggy refuses",
            id="argument-the-spec-lacks",
        ),
        pytest.param(
            "price_breakdown", "@hookimpl\n", "", "must be decorated with @hookimpl", id="no-marker"
        ),
    ],
)
def test_a_broken_example_fails(docs: Path, hook: str, old: str, new: str, expected: str) -> None:
    edit(docs, f"{hook}.md", "Example", old, new)
    with pytest.raises(AssertionError, match=re.escape(expected)):
        check_example(docs, hook)
