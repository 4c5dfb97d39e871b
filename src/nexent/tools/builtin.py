"""The built-in tools, registered in the default registry on import: `current_time`, `calculator`,
`fetch_webpage`, `workspace_write`, `workspace_read` and `workspace_list`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from nexent.tools import calculator as calc
from nexent.tools.netguard import normalize_domain
from nexent.tools.registry import (
    MAX_OUTPUT_CHARS,
    Citation,
    StrictArguments,
    ToolContext,
    ToolError,
    ToolResult,
    ToolSettings,
    ToolSpec,
    register,
)
from nexent.tools.webpage import FETCH_TIMEOUT, fetch_page
from nexent.tools.workspace import MAX_PATH_LENGTH, Workspace

__all__ = [
    "CALCULATOR",
    "CURRENT_TIME",
    "FETCH_WEBPAGE",
    "WORKSPACE_LIST",
    "WORKSPACE_READ",
    "WORKSPACE_WRITE",
    "CalculatorArgs",
    "CurrentTimeArgs",
    "FetchWebpageArgs",
    "FetchWebpageSettings",
    "WorkspaceListArgs",
    "WorkspaceReadArgs",
    "WorkspaceWriteArgs",
]


# --- current_time ---------------------------------------------------------------------------------------------


class CurrentTimeArgs(StrictArguments):
    timezone: str = Field(
        default="UTC", max_length=64, description="IANA time zone such as 'Europe/Paris' or 'Asia/Shanghai'."
    )


async def _current_time(args: CurrentTimeArgs, context: ToolContext) -> ToolResult:
    try:
        zone = ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ToolError(
            f"Unknown time zone {args.timezone!r}; use an IANA name such as 'Europe/Paris'.", "unknown_timezone"
        ) from None
    now = dt.datetime.now(zone).replace(microsecond=0)
    iso = now.isoformat()
    weekday = now.strftime("%A")
    return ToolResult(
        output=f"{iso} ({weekday}, {args.timezone})",
        data={"iso": iso, "weekday": weekday, "timezone": args.timezone, "unix": int(now.timestamp())},
    )


CURRENT_TIME = register(
    ToolSpec(
        name="current_time",
        description="The current date and time (ISO 8601) and weekday, in a given IANA time zone (default UTC).",
        arguments=CurrentTimeArgs,
        settings_schema=ToolSettings,
        run=_current_time,
    )
)


# --- calculator -----------------------------------------------------------------------------------------------


class CalculatorArgs(StrictArguments):
    expression: str = Field(
        min_length=1,
        max_length=calc.MAX_EXPRESSION_LENGTH,
        description="Arithmetic such as '(2 + 3) * sqrt(16) / 7'. Operators: + - * / // % ** and parentheses; "
        "functions: " + ", ".join(calc.FUNCTIONS) + "; constants: " + ", ".join(calc.CONSTANTS) + ".",
    )


async def _calculator(args: CalculatorArgs, context: ToolContext) -> ToolResult:
    value = calc.evaluate(args.expression)
    text = calc.format_number(value)
    exact = isinstance(value, float) or abs(value) < 2**53  # JSON readers lose larger integers
    return ToolResult(output=text, data={"expression": args.expression, "result": value if exact else text})


CALCULATOR = register(
    ToolSpec(
        name="calculator",
        description="Evaluate an arithmetic expression exactly and safely. Use it for any non-trivial arithmetic.",
        arguments=CalculatorArgs,
        settings_schema=ToolSettings,
        run=_calculator,
    )
)


# --- fetch_webpage --------------------------------------------------------------------------------------------


class FetchWebpageArgs(StrictArguments):
    url: str = Field(min_length=1, max_length=2048, description="The http or https URL of the page.")


class FetchWebpageSettings(ToolSettings):
    allowed_domains: list[str] | None = Field(
        default=None,
        max_length=200,
        description="If set, only these domains and their subdomains may be fetched (an empty list: none).",
    )
    max_chars: int = Field(
        default=20_000, ge=100, le=MAX_OUTPUT_CHARS, description="The most characters of page text returned."
    )

    @field_validator("allowed_domains")
    @classmethod
    def normalize_domains(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        return sorted({normalize_domain(domain) for domain in value})


async def _fetch_webpage(args: FetchWebpageArgs, context: ToolContext) -> ToolResult:
    settings = context.settings_for(FetchWebpageSettings)
    page = await fetch_page(
        args.url,
        allowed_domains=settings.allowed_domains,
        allow_private_network=context.allow_private_network,
        time_limit=context.timeout(FETCH_TIMEOUT),
    )
    text = page.text
    truncated = page.truncated or len(text) > settings.max_chars
    if len(text) > settings.max_chars:
        text = text[: settings.max_chars]
    header = f"URL: {page.url}\n" + (f"Title: {page.title}\n" if page.title else "")
    footer = "\n[content truncated]" if truncated else ""
    return ToolResult(
        output=f"{header}\n{text}{footer}",
        data={
            "url": page.url,
            "status": page.status,
            "title": page.title,
            "content_type": page.content_type,
            "truncated": truncated,
            "chars": len(text),
        },
        citations=[Citation(title=page.title or page.url, url=page.url, snippet=text[:200] or None)],
    )


FETCH_WEBPAGE = register(
    ToolSpec(
        name="fetch_webpage",
        description="Fetch a web page (http or https) and return its readable text, without scripts or markup.",
        arguments=FetchWebpageArgs,
        settings_schema=FetchWebpageSettings,
        run=_fetch_webpage,
    )
)


# --- workspace ------------------------------------------------------------------------------------------------

WorkspacePath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_PATH_LENGTH,
        description="A relative path such as 'notes/plan.md' ('/'-separated, no '..').",
    ),
]


class WorkspaceWriteArgs(StrictArguments):
    path: WorkspacePath
    content: str = Field(description="The whole text of the file (UTF-8); an existing file is replaced.")


class WorkspaceReadArgs(StrictArguments):
    path: WorkspacePath
    offset: int = Field(default=0, ge=0, description="The first character to return (for long files).")
    max_chars: int = Field(default=50_000, ge=1, le=MAX_OUTPUT_CHARS, description="The most characters returned.")


class WorkspaceListArgs(StrictArguments):
    prefix: str = Field(
        default="", max_length=MAX_PATH_LENGTH, description="Only paths that start with this (e.g. 'notes/')."
    )


async def _workspace_write(args: WorkspaceWriteArgs, context: ToolContext) -> ToolResult:
    written = await Workspace.for_context(context).write(args.path, args.content)
    return ToolResult(
        output=f"Wrote {written.path} ({written.size} bytes).", data={"path": written.path, "size": written.size}
    )


async def _workspace_read(args: WorkspaceReadArgs, context: ToolContext) -> ToolResult:
    content = await Workspace.for_context(context).read(args.path)
    part = content[args.offset : args.offset + args.max_chars]
    rest = len(content) - args.offset - len(part)
    note = f"\n[{rest} more characters; read on with offset={args.offset + len(part)}]" if rest > 0 else ""
    return ToolResult(
        output=part + note,
        data={"path": args.path, "chars": len(content), "offset": args.offset, "returned": len(part)},
        citations=[Citation(title=args.path, metadata={"workspace_path": args.path})],
    )


async def _workspace_list(args: WorkspaceListArgs, context: ToolContext) -> ToolResult:
    files = await Workspace.for_context(context).files(args.prefix)
    if not files:
        output = "No files." if not args.prefix else f"No files under {args.prefix!r}."
    else:
        output = "\n".join(f"{file.path} ({file.size} bytes)" for file in files)
    return ToolResult(output=output, data={"files": [{"path": f.path, "size": f.size} for f in files]})


WORKSPACE_WRITE = register(
    ToolSpec(
        name="workspace_write",
        description="Create or replace a text file in this conversation's workspace.",
        arguments=WorkspaceWriteArgs,
        settings_schema=ToolSettings,
        run=_workspace_write,
    )
)
WORKSPACE_READ = register(
    ToolSpec(
        name="workspace_read",
        description="Read a text file from this conversation's workspace.",
        arguments=WorkspaceReadArgs,
        settings_schema=ToolSettings,
        run=_workspace_read,
    )
)
WORKSPACE_LIST = register(
    ToolSpec(
        name="workspace_list",
        description="List the files in this conversation's workspace, with their sizes.",
        arguments=WorkspaceListArgs,
        settings_schema=ToolSettings,
        run=_workspace_list,
    )
)
