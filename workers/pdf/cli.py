"""``python -m workers.pdf FILE [--password X] [--pages 1-3] [--layout] [--inspect]``: prints the
result as JSON, for operators checking a file by hand. Exits 0 when the result succeeded, 1 when not."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from workers.pdf.api import extract_pdf, inspect_pdf
from workers.pdf.result import PdfInfo, PdfResult


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m workers.pdf", description="Extract the text of a PDF.")
    parser.add_argument("file")
    parser.add_argument("--password", help="user or owner password (visible to other local users in ps)")
    parser.add_argument("--pages", help="pages to extract, 1-based, e.g. 1-3,5 (default: all)")
    parser.add_argument("--layout", action="store_true", help="keep the visual layout of each page")
    parser.add_argument("--inspect", action="store_true", help="only report the page count and encryption")
    parser.add_argument("--timeout", type=float, default=60, help="wall-time limit in seconds (default: 60)")
    parser.add_argument("--memory-mb", type=int, default=1024, help="address-space limit (default: 1024)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    result: PdfInfo | PdfResult
    if args.inspect:
        result = inspect_pdf(path=args.file, password=args.password, timeout_s=args.timeout, memory_mb=args.memory_mb)
    else:
        result = extract_pdf(
            path=args.file,
            password=args.password,
            pages=args.pages,
            layout=args.layout,
            timeout_s=args.timeout,
            memory_mb=args.memory_mb,
        )
    json.dump(result.to_dict(), sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return 0 if result.succeeded else 1
