/**
 * A small RFC 4180 CSV reader: quoted fields with doubled quotes, delimiters and line breaks
 * inside quotes, CRLF or LF line ends, a UTF-8 byte order mark, blank lines (also `,,,` rows and
 * lines of spaces) skipped. It refuses
 * what it cannot read unambiguously (a stray quote, an unterminated quoted field, a row whose
 * field count differs from the header), naming the line.
 */

export interface CsvTable {
  header: string[];
  rows: string[][];
  /** Line (1-based) on which each row starts, for messages. */
  lines: number[];
}

export class CsvError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'CsvError';
  }
}

export function parseCsv(input: string, delimiter = ','): CsvTable {
  if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') {
    throw new Error(`"${delimiter}" cannot be a CSV delimiter`);
  }
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  const records: Array<{ fields: string[]; line: number }> = [];
  let fields: string[] = [];
  let field = '';
  let line = 1;
  let recordLine = 1;
  let i = 0;
  // Whether the current field was quoted, and whether any field of the record was, so an empty
  // quoted field still counts.
  let quoted = false;
  let anyQuoted = false;
  const endRecord = () => {
    fields.push(field);
    // Blank: nothing but delimiters and spaces, such as the `,,,` rows and whitespace-only last
    // line spreadsheets leave behind.
    const blank = !anyQuoted && fields.every((f) => f.trim() === '');
    if (!blank) records.push({ fields, line: recordLine });
    fields = [];
    field = '';
    quoted = false;
    anyQuoted = false;
  };

  while (i < text.length) {
    const c = text[i] as string;
    if (c === '"') {
      if (field !== '' || quoted) throw new CsvError('a quote inside an unquoted field', line);
      quoted = true;
      anyQuoted = true;
      i += 1;
      const start = line;
      for (;;) {
        if (i >= text.length) throw new CsvError('a quoted field is not closed', start);
        const q = text[i] as string;
        if (q === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i += 1;
          break;
        }
        if (q === '\n') line += 1;
        field += q;
        i += 1;
      }
      const next = text[i];
      if (next !== undefined && next !== delimiter && next !== '\n' && next !== '\r') {
        throw new CsvError('text after a closing quote', line);
      }
      continue;
    }
    if (c === delimiter) {
      fields.push(field);
      field = '';
      quoted = false;
      i += 1;
      continue;
    }
    if (c === '\r' || c === '\n') {
      endRecord();
      i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
      line += 1;
      recordLine = line;
      continue;
    }
    if (quoted) throw new CsvError('text after a closing quote', line);
    field += c;
    i += 1;
  }
  if (field !== '' || quoted || fields.length > 0) endRecord();

  const [head, ...body] = records;
  if (!head) throw new CsvError('the file is empty (a header row is required)', 1);
  const header = head.fields.map((h) => h.trim());
  const seen = new Set<string>();
  for (const name of header) {
    if (name === '') throw new CsvError('the header has an empty column name', head.line);
    const key = name.toLowerCase();
    if (seen.has(key)) throw new CsvError(`the header names column "${name}" twice`, head.line);
    seen.add(key);
  }
  for (const record of body) {
    if (record.fields.length !== header.length) {
      throw new CsvError(`${record.fields.length} fields, but the header has ${header.length}`, record.line);
    }
  }
  return { header, rows: body.map((r) => r.fields), lines: body.map((r) => r.line) };
}
