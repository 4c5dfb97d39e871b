"""Binary Office 97-2003 documents read from their OLE streams: DOC (Word) and PPT (PowerPoint).

Only the text and structure that the formats keep in simple places are read: DOC paragraphs, built-in heading
styles and tables (from the piece table and the paragraph properties); PPT slide titles, text boxes and
placeholders. XLS goes through xlrd (office.py).
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Iterator

import olefile  # type: ignore[import-untyped]

from .base import ParseFailure, ParseLimits
from .structure import Builder, clean_line


def _u16(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<H", data, offset)[0])


def _u32(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<I", data, offset)[0])


def _open(data: bytes) -> olefile.OleFileIO:
    try:
        return olefile.OleFileIO(data)
    except Exception as exc:  # olefile raises OSError and others on damaged containers
        raise ParseFailure("corrupt_file", "The Office file is damaged.") from exc


def _stream(ole: olefile.OleFileIO, name: str) -> bytes:
    if not ole.exists(name):
        raise ParseFailure("corrupt_file", "The Office file is damaged (a stream is missing).")
    data: bytes = ole.openstream(name).read()
    return data


# --- DOC ----------------------------------------------------------------------------------------------------

_SPRM_IN_TABLE = 0x2416
_SPRM_TTP = 0x2417
_SPRM_ITAP = 0x6649
_SPRM_INNER_TTP = 0x244C
_SPRM_TDEF_TABLE = 0xD608
_SPRM_CHG_TABS = 0xC615


def _sprms(grpprl: bytes) -> Iterator[tuple[int, bytes]]:
    i = 0
    while i + 2 <= len(grpprl):
        sprm = _u16(grpprl, i)
        i += 2
        spra = sprm >> 13
        if spra in (0, 1):
            size = 1
        elif spra in (2, 4, 5):
            size = 2
        elif spra == 3:
            size = 4
        elif spra == 7:
            size = 3
        elif sprm == _SPRM_TDEF_TABLE and i + 2 <= len(grpprl):
            size = _u16(grpprl, i) + 1
        elif sprm == _SPRM_CHG_TABS and i < len(grpprl):
            size = grpprl[i] + 1 if grpprl[i] != 255 else len(grpprl) - i
        elif i < len(grpprl):
            size = grpprl[i] + 1
        else:
            return
        yield sprm, grpprl[i : i + size]
        i += size


class _Papx:
    """Paragraph properties by file offset: style index, in-table and row-end flags."""

    def __init__(self, word: bytes, table: bytes, fc: int, lcb: int) -> None:
        self.starts: list[int] = []
        self.runs: list[tuple[int, int, bool, bool]] = []  # (end fc, istd, in table, row end)
        plc = table[fc : fc + lcb]
        count = (len(plc) - 4) // 8 if len(plc) >= 4 else 0
        pages = [_u32(plc, 4 * (count + 1) + 4 * i) & 0x3FFFFF for i in range(count)]
        entries: list[tuple[int, int, int, bool, bool]] = []
        for page_number in pages:
            page = word[page_number * 512 : page_number * 512 + 512]
            if len(page) < 512:
                continue
            crun = page[511]
            if 4 * (crun + 1) + 13 * crun > 511:
                continue
            fcs = [_u32(page, 4 * i) for i in range(crun + 1)]
            for i in range(crun):
                istd, in_table, row_end = 0, False, False
                offset = page[4 * (crun + 1) + 13 * i] * 2
                if offset:
                    cb = page[offset]
                    if cb == 0 and offset + 1 < 512:
                        start, size = offset + 2, 2 * page[offset + 1]
                    else:
                        start, size = offset + 1, 2 * cb - 1
                    grpprl = page[start : start + size]
                    if len(grpprl) >= 2:
                        istd = _u16(grpprl, 0)
                        for sprm, operand in _sprms(grpprl[2:]):
                            if sprm == _SPRM_IN_TABLE and operand[:1] == b"\x01":
                                in_table = True
                            elif sprm in (_SPRM_TTP, _SPRM_INNER_TTP) and operand[:1] == b"\x01":
                                row_end = True
                            elif sprm == _SPRM_ITAP and len(operand) >= 2 and _u16(operand, 0) > 0:
                                in_table = True
                entries.append((fcs[i], fcs[i + 1], istd, in_table, row_end))
        entries.sort()
        for start, end, istd, in_table, row_end in entries:
            self.starts.append(start)
            self.runs.append((end, istd, in_table, row_end))

    def at(self, fc: int) -> tuple[int, bool, bool]:
        index = bisect.bisect_right(self.starts, fc) - 1
        if index >= 0 and fc < self.runs[index][0]:
            _, istd, in_table, row_end = self.runs[index]
            return istd, in_table, row_end
        return 0, False, False


def _style_kinds(table: bytes, fc: int, lcb: int) -> dict[int, int]:
    """istd -> built-in style id (sti); sti 1..9 are "heading 1".."heading 9"."""
    stsh = table[fc : fc + lcb]
    result: dict[int, int] = {}
    if len(stsh) < 4:
        return result
    cb_stshi = _u16(stsh, 0)
    count = _u16(stsh, 2)
    offset = 2 + cb_stshi
    for istd in range(count):
        if offset + 2 > len(stsh):
            break
        cb_std = _u16(stsh, offset)
        if cb_std >= 2 and offset + 4 <= len(stsh):
            result[istd] = _u16(stsh, offset + 2) & 0x0FFF
        offset += 2 + cb_std
    return result


def _pieces(table: bytes, fc_clx: int, lcb_clx: int) -> list[tuple[int, int, int, bool]]:
    clx = table[fc_clx : fc_clx + lcb_clx]
    i = 0
    while i < len(clx):
        if clx[i] == 0x01:  # Prc: property modifiers, not needed
            i += 3 + _u16(clx, i + 1)
        elif clx[i] == 0x02:
            lcb = _u32(clx, i + 1)
            plc = clx[i + 5 : i + 5 + lcb]
            n = (lcb - 4) // 12
            cps = [_u32(plc, 4 * k) for k in range(n + 1)]
            pieces = []
            for k in range(n):
                fc_value = _u32(plc, 4 * (n + 1) + 8 * k + 2)
                compressed = bool(fc_value & 0x40000000)
                fc = (fc_value & 0x3FFFFFFF) // 2 if compressed else fc_value & 0x3FFFFFFF
                pieces.append((cps[k], cps[k + 1], fc, compressed))
            return pieces
        else:
            break
    raise ParseFailure("corrupt_file", "The Word document is damaged (no piece table).")


def _visible(text: str) -> str:
    """Drop field codes (keep field results) and Word's private marks."""
    out: list[str] = []
    stack: list[bool] = []  # per open field: True once its result starts
    for ch in text:
        if ch == "\x13":
            stack.append(False)
        elif ch == "\x14":
            if stack:
                stack[-1] = True
        elif ch == "\x15":
            if stack:
                stack.pop()
        elif all(stack):
            out.append(ch)
    return "".join(out)


def parse_doc(data: bytes, builder: Builder) -> None:
    ole = _open(data)
    try:
        word = _stream(ole, "WordDocument")
        if len(word) < 0x200 or _u16(word, 0) != 0xA5EC:
            raise ParseFailure("corrupt_file", "The Word document is damaged or too old (Word 6/95).")
        flags = _u16(word, 0x0A)
        if flags & 0x0100 or flags & 0x8000:
            raise ParseFailure("encrypted", "The Word document is protected with a password.")
        table = _stream(ole, "1Table" if flags & 0x0200 else "0Table")
    finally:
        ole.close()
    csw = _u16(word, 32)
    lw_offset = 34 + 2 * csw
    cslw = _u16(word, lw_offset)
    ccp_text = _u32(word, lw_offset + 2 + 4 * 3)
    fclcb = lw_offset + 2 + 4 * cslw + 2

    def pair(index: int) -> tuple[int, int]:
        return _u32(word, fclcb + 8 * index), _u32(word, fclcb + 8 * index + 4)

    pieces = _pieces(table, *pair(33))
    papx = _Papx(word, table, *pair(13))
    styles = _style_kinds(table, *pair(1))

    chars: list[str] = []
    fcs: list[int] = []
    for cp_start, cp_end, fc, compressed in pieces:
        if cp_start >= ccp_text:
            break
        cp_end = min(cp_end, ccp_text)
        count = cp_end - cp_start
        if compressed:
            text = word[fc : fc + count].decode("cp1252", errors="replace")
            fcs.extend(fc + k for k in range(len(text)))
        else:
            text = word[fc : fc + 2 * count].decode("utf-16-le", errors="replace")
            fcs.extend(fc + 2 * k for k in range(len(text)))
        chars.extend(text)

    rows: list[list[str]] = []
    row: list[str] = []
    cell: list[str] = []
    paragraph: list[str] = []
    for ch, fc in zip(chars, fcs, strict=True):
        if ch not in ("\r", "\x07"):
            paragraph.append(ch)
            continue
        istd, in_table, row_end = papx.at(fc)
        text = _visible("".join(paragraph)).replace("\x0b", "\n").replace("\x0c", "\n")
        text = text.replace("\x1e", "-").replace("\x1f", "").replace("\xa0", " ")
        paragraph = []
        if in_table or row_end:
            if row_end:
                if cell:
                    row.append(" ".join(cell))
                    cell = []
                rows.append(row)
                row = []
            else:
                cell.append(clean_line(text))
                if ch == "\x07":
                    row.append(" ".join(part for part in cell if part))
                    cell = []
            continue
        if rows or row:
            builder.table([*rows, row] if row else rows)
            rows, row = [], []
        sti = styles.get(istd, 0)
        if 1 <= sti <= 9 and text.strip():
            builder.heading(text, sti)
        else:
            builder.add("paragraph", text.replace("\x07", "\t"))
    if rows or row:
        builder.table([*rows, row] if row else rows)


# --- PPT ----------------------------------------------------------------------------------------------------

_SLIDE = 0x03EE
_SLIDE_LIST = 0x0FF0
_SLIDE_PERSIST = 0x03F3
_TEXT_HEADER = 0x0F9F
_TEXT_CHARS = 0x0FA0
_TEXT_BYTES = 0x0FA8
_CRYPT_SESSION = 0x2F14
_SKIP_CONTAINERS = {0x03F8, 0x03F0, 0x0FC9}  # main master, notes, handout
_TITLE_TYPES = {0, 6}


def _records(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(type, instance, body start, body end) of each record in data[start:end], not descending."""
    offset = start
    while offset + 8 <= end:
        ver_inst, rtype, length = struct.unpack_from("<HHI", data, offset)
        body = offset + 8
        stop = min(body + length, end)
        yield rtype, ver_inst, body, stop
        offset = body + length


def _is_container(ver_inst: int) -> bool:
    return ver_inst & 0x000F == 0x000F


class _PptText:
    def __init__(self, stream: bytes) -> None:
        self.stream = stream
        self.list_slides: list[list[tuple[int, str]]] = []
        self.shape_slides: list[list[tuple[int, str]]] = []

    def walk(self, start: int, end: int, depth: int, target: list[tuple[int, str]] | None) -> None:
        if depth > 24:
            return
        text_type = 4
        for rtype, ver_inst, body, stop in _records(self.stream, start, end):
            if rtype == _CRYPT_SESSION:
                raise ParseFailure("encrypted", "The presentation is protected with a password.")
            if _is_container(ver_inst):
                if rtype in _SKIP_CONTAINERS:
                    continue
                if rtype == _SLIDE and depth == 0:
                    self.shape_slides.append([])
                    self.walk(body, stop, depth + 1, self.shape_slides[-1])
                elif rtype == _SLIDE_LIST:
                    if ver_inst >> 4 == 0:  # instance 0: the slides (1 is masters, 2 notes)
                        self.walk(body, stop, depth + 1, None)
                else:
                    self.walk(body, stop, depth + 1, target)
                continue
            if rtype == _SLIDE_PERSIST:
                self.list_slides.append([])
            elif rtype == _TEXT_HEADER and stop - body >= 4:
                text_type = _u32(self.stream, body)
            elif rtype in (_TEXT_CHARS, _TEXT_BYTES):
                raw = self.stream[body:stop]
                text = raw.decode("utf-16-le" if rtype == _TEXT_CHARS else "cp1252", errors="replace")
                if target is not None:
                    target.append((text_type, text))
                elif self.list_slides:
                    self.list_slides[-1].append((text_type, text))
                text_type = 4


def parse_ppt(data: bytes, builder: Builder, limits: ParseLimits) -> int:
    ole = _open(data)
    try:
        if ole.exists("EncryptedSummary"):
            raise ParseFailure("encrypted", "The presentation is protected with a password.")
        stream = _stream(ole, "PowerPoint Document")
    finally:
        ole.close()
    reader = _PptText(stream)
    reader.walk(0, len(stream), 0, None)
    count = max(len(reader.list_slides), len(reader.shape_slides))
    if count > limits.max_pages:
        raise ParseFailure("too_large", f"The presentation has more than {limits.max_pages} slides.")
    for index in range(count):
        number = index + 1
        builder.reset_headings()
        texts = list(reader.list_slides[index]) if index < len(reader.list_slides) else []
        seen = {text for _, text in texts}
        if index < len(reader.shape_slides):
            texts.extend(item for item in reader.shape_slides[index] if item[1] not in seen)
        for text_type, text in sorted(texts, key=lambda item: item[0] not in _TITLE_TYPES):
            text = text.replace("\x0b", "\n")
            if text_type in _TITLE_TYPES and text.strip():
                builder.heading(text, 1, number)
            else:
                for paragraph in text.split("\r"):
                    builder.add("paragraph", paragraph, number)
    return count
