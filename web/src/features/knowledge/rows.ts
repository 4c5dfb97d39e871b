/**
 * Structured import in the browser: which files can become one document per row, and their column names (read from
 * the file's start, as the server reads them: a CSV file's header row, the keys of a JSON Lines file's first rows).
 */

export interface RowChoice {
  id_column?: string;
  metadata_columns: string[];
  text_columns: string[];
}

const ROW_FILE = /\.(csv|tsv|jsonl|ndjson)$/i;
const DELIMITERS = [",", ";", "\t"];
const HEAD_BYTES = 256 * 1024;

/** A CSV or JSON Lines file, by its name (the server decides by the name, else by the content). */
export function isRowFile(file: File): boolean {
  return ROW_FILE.test(file.name);
}

/** The metadata key a column becomes on the server (lowercase, other characters as `_`), or null when none. */
export function metadataKey(column: string): string | null {
  const key = column
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "");
  return /^[a-z0-9_]{1,64}$/.test(key) && !["format", "kind", "page"].includes(key) ? key : null;
}

/** The file's column names; empty when they cannot be read. */
export async function readColumns(file: File): Promise<string[]> {
  let text: string;
  try {
    text = (await file.slice(0, HEAD_BYTES).text()).replace(/^\ufeff/, "");
  } catch {
    return [];
  }
  return /\.(jsonl|ndjson)$/i.test(file.name) ? jsonlColumns(text) : csvHeader(text);
}

function csvHeader(text: string): string[] {
  const firstLine = text.split("\n", 1)[0];
  const counts = DELIMITERS.map((d) => firstLine.split(d).length - 1);
  const best = Math.max(...counts);
  const delimiter = best > 0 ? DELIMITERS[counts.indexOf(best)] : ",";
  const cells: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch !== '"') cell += ch;
      else if (text[i + 1] === '"') {
        cell += '"';
        i++;
      } else quoted = false;
    } else if (ch === '"') quoted = true;
    else if (ch === delimiter) {
      cells.push(cell);
      cell = "";
    } else if (ch === "\n" || ch === "\r") break;
    else cell += ch;
  }
  cells.push(cell);
  return unique(cells.map((name) => name.trim()).filter(Boolean));
}

function jsonlColumns(text: string): string[] {
  const columns: string[] = [];
  for (const line of text.split("\n").slice(0, 200)) {
    if (!line.trim()) continue;
    try {
      const value: unknown = JSON.parse(line);
      if (value && typeof value === "object" && !Array.isArray(value)) columns.push(...Object.keys(value));
    } catch {
      // a bad line: the server reports it
    }
  }
  return unique(columns);
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
