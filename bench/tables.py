"""Table extraction from PDFs: the product's parser against reference extractors, on the ICDAR-2013 sets.

Sets (read from `../shared/bench/parsing/`, never copied; `--data` points elsewhere): `eu` is the competition's EU
set (`icdar2013-eu/`, mostly ruled tables), `us` the 20 US documents of `icdar2013-us-dev/` (mostly tables without
ruling lines). A document is scored when both its `-str.xml` gold and its PDF are there (eu-009b has no PDF).

Scoring is the shared scorer `table_relations.py` (in the data folder): every extracted table becomes a grid, a
document's cell adjacency relations (each non-empty cell with its next non-empty neighbour along its row, 'h', and
down its column, 'v', texts normalised) are matched against those of the gold tables as multisets, and the counts
are micro-averaged over the documents of the set (`micro`).

Extractors, all measured in the same run, one document at a time, in this process:
- `nexent`: the product, `nexent.knowledge.parsing.parse_document` (OCR off unless `--ocr`); its tables are the
  Markdown of its blocks of kind "table" read back with the scorer (`chunk_tables` over the blocks, a non-table
  block between two table blocks breaking the run): the pieces of a long table, consecutive blocks that repeat the
  header row, are merged back into one table.
- `pdfplumber`: pdfplumber's defaults, `page.extract_tables()` per page (ruling lines only).
- `pdfplumber-text`, `pdfplumber-text-tuned`: pdfplumber's "text" strategies, as is and with tuned settings.
- `camelot-stream`, `camelot-lattice`, `camelot-network`, `camelot-hybrid`: `camelot.read_pdf(pages="all")` with
  that flavor (camelot-py).
- `pymupdf`, `pymupdf-text`: PyMuPDF's `page.find_tables()`, default ("lines") and `strategy="text"`.
- `img2table`, `img2table-implicit`: img2table on the PDF (its text layer, no OCR), `extract_tables(
  borderless_tables=True)` with `implicit_rows` off and on; a spanning cell counts once.
The reference extractors are optional: one whose library is not importable is skipped with a line saying so.

Figures, per set and extractor:
- P, R, F1: micro precision, recall and F1 of the relations over the set's documents.
- tables: tables found (the line above the figures gives the gold's count).
- missed: documents where the extractor found no table while the gold has some.
- errors: documents where the extractor raised (scored as no table).
- s/page: wall time of the extractor over the set divided by the set's pages (each extractor is warmed up once,
  untimed, on the run's shortest document, so imports and lazy loading are not counted).
`--per-doc` prints P, R and F1 per document for the `nexent` extractor; `--json` writes every figure, per document
and per extractor too, with the machine.

Run: `.venv/bin/python bench/tables.py [--sets eu,us] [--extractors nexent,pdfplumber,...] [--limit N] [--per-doc]
[--ocr] [--json out.json] [--data DIR]` (the reference libraries other than pdfplumber are installed apart:
camelot-py, pymupdf, img2table).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "bench" / "parsing"
SETS = {"eu": "icdar2013-eu", "us": "icdar2013-us-dev"}

Table = list[list[str]]
Extract = Callable[[Path], list[Table]]

# pdfplumber's text strategies, tuned on both sets: the best mean F1 of EU and US dev over a grid of
# min_words_vertical (3 to 40), min_words_horizontal (1, 2), snap_tolerance (3, 6) and join_tolerance (3, 6), and of
# mixing "lines" and "text" (tuned on the data it is scored on, so an upper bound for these settings).
PDFPLUMBER_TEXT = {"vertical_strategy": "text", "horizontal_strategy": "text"}
PDFPLUMBER_TEXT_TUNED = {
    "vertical_strategy": "text",
    "horizontal_strategy": "text",
    "min_words_vertical": 16,
    "min_words_horizontal": 2,
    "snap_tolerance": 6,
}


def cell(value: object) -> str:
    return "" if value is None else str(value)


def rows_of(table: Sequence[Sequence[object]]) -> Table:
    return [[cell(value) for value in row] for row in table]


def module(name: str) -> Any:
    return importlib.import_module(name)


# ---- extractors ----------------------------------------------------------------------------------------------


def nexent_extractor(ocr: bool, scorer: ModuleType) -> Extract:
    parsing = module("nexent.knowledge.parsing")
    limits = parsing.ParseLimits() if ocr else parsing.ParseLimits(ocr=False)

    def extract(path: Path) -> list[Table]:
        doc = parsing.parse_document(path.read_bytes(), path.name, limits=limits)
        # Only consecutive table blocks can be pieces of one table: any other block between them breaks the run.
        chunks = [(block.text if block.kind == "table" else "", None, None) for block in doc.blocks]
        tables, _ = scorer.chunk_tables(chunks)
        return [rows_of(table) for table in tables]

    return extract


def pdfplumber_extractor(settings: dict[str, Any] | None) -> Extract:
    pdfplumber = module("pdfplumber")

    def extract(path: Path) -> list[Table]:
        tables: list[Table] = []
        with pdfplumber.open(path) as pdf:
            for page in pdf.pages:
                tables.extend(rows_of(table) for table in page.extract_tables(settings))
        return tables

    return extract


def camelot_extractor(flavor: str) -> Extract:
    camelot = module("camelot")

    def extract(path: Path) -> list[Table]:
        found = camelot.read_pdf(str(path), flavor=flavor, pages="all", suppress_stdout=True)
        return [rows_of(table.df.values.tolist()) for table in found]

    return extract


def pymupdf_extractor(strategy: str | None) -> Extract:
    pymupdf = module("pymupdf")
    options = {"strategy": strategy} if strategy else {}

    def extract(path: Path) -> list[Table]:
        tables: list[Table] = []
        with pymupdf.open(path) as doc:
            for page in doc:
                tables.extend(rows_of(table.extract()) for table in page.find_tables(**options).tables)
        return tables

    return extract


def img2table_extractor(implicit_rows: bool) -> Extract:
    document = module("img2table.document")

    def extract(path: Path) -> list[Table]:
        pdf = document.PDF(src=str(path))
        found = pdf.extract_tables(implicit_rows=implicit_rows, borderless_tables=True)
        tables: list[Table] = []
        for page_tables in found.values():
            for table in page_tables:
                rows: Table = []
                seen: set[int] = set()  # a spanning cell is the same object in every row and column it covers
                for row in table.content.values():
                    rows.append([])
                    for item in row:
                        rows[-1].append("" if id(item) in seen else cell(item.value))
                        seen.add(id(item))
                tables.append(rows)
        return tables

    return extract


@dataclass(frozen=True)
class Candidate:
    name: str
    requires: str  # the module that must be importable
    package: str  # what to install for it
    make: Callable[[argparse.Namespace, ModuleType], Extract]


CANDIDATES = [
    Candidate("nexent", "nexent.knowledge.parsing", "nexent", lambda a, s: nexent_extractor(a.ocr, s)),
    Candidate("pdfplumber", "pdfplumber", "pdfplumber", lambda a, s: pdfplumber_extractor(None)),
    Candidate("pdfplumber-text", "pdfplumber", "pdfplumber", lambda a, s: pdfplumber_extractor(PDFPLUMBER_TEXT)),
    Candidate(
        "pdfplumber-text-tuned", "pdfplumber", "pdfplumber", lambda a, s: pdfplumber_extractor(PDFPLUMBER_TEXT_TUNED)
    ),
    Candidate("camelot-stream", "camelot", "camelot-py", lambda a, s: camelot_extractor("stream")),
    Candidate("camelot-lattice", "camelot", "camelot-py", lambda a, s: camelot_extractor("lattice")),
    Candidate("camelot-network", "camelot", "camelot-py", lambda a, s: camelot_extractor("network")),
    Candidate("camelot-hybrid", "camelot", "camelot-py", lambda a, s: camelot_extractor("hybrid")),
    Candidate("pymupdf", "pymupdf", "pymupdf", lambda a, s: pymupdf_extractor(None)),
    Candidate("pymupdf-text", "pymupdf", "pymupdf", lambda a, s: pymupdf_extractor("text")),
    Candidate("img2table", "img2table", "img2table", lambda a, s: img2table_extractor(False)),
    Candidate("img2table-implicit", "img2table", "img2table", lambda a, s: img2table_extractor(True)),
]


# ---- documents and scoring -----------------------------------------------------------------------------------


@dataclass
class Document:
    name: str
    pdf: Path
    pages: int
    gold_tables: int
    gold: Any  # the scorer's Counter of gold relations


@dataclass
class DocResult:
    name: str
    pages: int
    gold_tables: int
    tables: int = 0
    matches: int = 0
    extracted: int = 0
    gold: int = 0
    seconds: float = 0.0
    error: str | None = None

    def prf(self) -> tuple[float, float, float]:
        p = self.matches / self.extracted if self.extracted else 0.0
        r = self.matches / self.gold if self.gold else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)


@dataclass
class Result:
    extractor: str
    docs: list[DocResult] = field(default_factory=list)

    def summary(self, scorer: ModuleType) -> dict[str, Any]:
        precision, recall, f1 = scorer.micro([(d.matches, d.extracted, d.gold) for d in self.docs])
        seconds = sum(d.seconds for d in self.docs)
        pages = sum(d.pages for d in self.docs)
        return {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "tables": sum(d.tables for d in self.docs),
            "gold_tables": sum(d.gold_tables for d in self.docs),
            "missed": [d.name for d in self.docs if d.tables == 0 and d.gold_tables > 0],
            "errors": [d.name for d in self.docs if d.error],
            "seconds": round(seconds, 3),
            "seconds_per_page": round(seconds / pages, 4) if pages else 0.0,
        }


def load_scorer(data: Path) -> ModuleType:
    sys.path.insert(0, str(data))
    return importlib.import_module("table_relations")


def page_count(path: Path) -> int:
    import pypdfium2 as pdfium  # type: ignore[import-untyped]

    pdf = pdfium.PdfDocument(str(path))
    try:
        return len(pdf)
    finally:
        pdf.close()


def documents(folder: Path, scorer: ModuleType, limit: int | None) -> tuple[list[Document], list[str]]:
    docs: list[Document] = []
    skipped: list[str] = []
    for gold_path in sorted(folder.glob("*-str.xml")):
        name = gold_path.name.removesuffix("-str.xml")
        pdf = folder / f"{name}.pdf"
        if not pdf.exists():
            skipped.append(name)
            continue
        gold = scorer.gold_tables(gold_path)
        docs.append(Document(name, pdf, page_count(pdf), len(gold), scorer.document_relations(gold)))
    return (docs[:limit] if limit else docs), skipped


def run_one(extract: Extract, doc: Document, scorer: ModuleType) -> DocResult:
    result = DocResult(doc.name, doc.pages, doc.gold_tables)
    started = time.perf_counter()
    try:
        tables = extract(doc.pdf)
    except Exception as exc:  # an extractor failing on a document scores no table there
        tables = []
        result.error = f"{type(exc).__name__}: {exc}"[:200]
    result.seconds = time.perf_counter() - started
    result.tables = len(tables)
    result.matches, result.extracted, result.gold = scorer.match(scorer.document_relations(tables), doc.gold)
    return result


# ---- output --------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
    }


def versions(names: Sequence[str]) -> dict[str, str]:
    out = {}
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    return out


def print_set(label: str, docs: list[Document], results: list[Result], scorer: ModuleType) -> None:
    pages = sum(d.pages for d in docs)
    gold_tables = sum(d.gold_tables for d in docs)
    print(f"\n{label}: {len(docs)} documents, {pages} pages, {gold_tables} gold tables")
    print(f"{'extractor':<22} {'P':>6} {'R':>6} {'F1':>6} {'tables':>7} {'missed':>7} {'errors':>7} {'s/page':>8}")
    for result in results:
        s = result.summary(scorer)
        print(
            f"{result.extractor:<22} {s['precision']:>6.3f} {s['recall']:>6.3f} {s['f1']:>6.3f} {s['tables']:>7} "
            f"{len(s['missed']):>7} {len(s['errors']):>7} {s['seconds_per_page']:>8.3f}"
        )
    for result in results:
        for d in result.docs:
            if d.error:
                print(f"  {result.extractor} failed on {d.name}: {d.error}")


def print_per_doc(label: str, result: Result) -> None:
    print(f"\n{label}, {result.extractor} per document:")
    print(f"{'document':<10} {'pages':>5} {'gold':>5} {'found':>5} {'P':>6} {'R':>6} {'F1':>6} {'s':>7}")
    for d in result.docs:
        p, r, f1 = d.prf()
        mark = "  no table" if d.tables == 0 and d.gold_tables else ""
        print(
            f"{d.name:<10} {d.pages:>5} {d.gold_tables:>5} {d.tables:>5} {p:>6.3f} {r:>6.3f} {f1:>6.3f} "
            f"{d.seconds:>7.2f}{mark}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="eu,us", help="comma-separated: eu, us")
    parser.add_argument(
        "--extractors",
        default=",".join(c.name for c in CANDIDATES),
        help="comma-separated, of: " + ", ".join(c.name for c in CANDIDATES),
    )
    parser.add_argument("--limit", type=int, default=None, help="the first N documents of each set")
    parser.add_argument("--per-doc", action="store_true", help="P, R, F1 per document for the nexent extractor")
    parser.add_argument("--ocr", action="store_true", help="the product's parser with OCR on (off by default)")
    parser.add_argument("--json", type=Path, default=None, help="write every figure to this file")
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the sets and table_relations.py")
    args = parser.parse_args()

    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown_sets = [s for s in sets if s not in SETS]
    if unknown_sets:
        parser.error(f"unknown sets: {', '.join(unknown_sets)}")
    by_name = {c.name: c for c in CANDIDATES}
    wanted = [n.strip() for n in args.extractors.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        parser.error(f"unknown extractors: {', '.join(unknown)}")

    scorer = load_scorer(args.data)
    extractors: dict[str, Extract] = {}
    for name in wanted:
        candidate = by_name[name]
        if importlib.util.find_spec(candidate.requires.split(".")[0]) is None:
            print(f"skipped {name}: {candidate.requires} is not importable (install {candidate.package})")
            continue
        extractors[name] = candidate.make(args, scorer)
    if not extractors:
        sys.exit("no extractor to run")

    loaded = {s: documents(args.data / SETS[s], scorer, args.limit) for s in sets}
    for s, (_, skipped) in loaded.items():
        if skipped:
            print(f"{s}: not scored, gold without a PDF: {', '.join(skipped)}")
    everything = [d for docs, _ in loaded.values() for d in docs]
    if not everything:
        sys.exit(f"no documents under {args.data}")
    warmup = min(everything, key=lambda d: (d.pages, d.pdf.stat().st_size))
    for name, extract in extractors.items():
        try:
            extract(warmup.pdf)
        except Exception as exc:
            print(f"{name}: warm-up on {warmup.name} failed: {type(exc).__name__}: {exc}")

    report: dict[str, Any] = {
        "machine": machine(),
        "versions": versions(["pdfplumber", "camelot-py", "pymupdf", "img2table", "pypdfium2", "pdfminer.six"]),
        "ocr": args.ocr,
        "warmup": warmup.name,
        "sets": {},
    }
    for s, (docs, skipped) in loaded.items():
        results: list[Result] = []
        for name, extract in extractors.items():
            result = Result(name)
            for doc in docs:
                result.docs.append(run_one(extract, doc, scorer))
            results.append(result)
        print_set(f"{s} ({SETS[s]})", docs, results, scorer)
        if args.per_doc:
            for result in results:
                if result.extractor == "nexent":
                    print_per_doc(s, result)
        report["sets"][s] = {
            "folder": SETS[s],
            "documents": len(docs),
            "pages": sum(d.pages for d in docs),
            "gold_tables": sum(d.gold_tables for d in docs),
            "not_scored": skipped,
            "extractors": {
                r.extractor: {
                    **r.summary(scorer),
                    "per_document": [
                        {
                            **{k: v for k, v in vars(d).items() if k != "seconds"},
                            "seconds": round(d.seconds, 3),
                            "f1": round(d.prf()[2], 4),
                        }
                        for d in r.docs
                    ],
                }
                for r in results
            },
        }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
