import { BufferedField, decodeField, DocumentId, OPERATOR } from './buffered-field';
import { decodeComparable, decodeIncrement, decodeOrderedSetValue } from './buffered-value';

/** What one batch holds for one document, decoded from the buffered fields. */
export interface DocumentBatch {
  documentId: DocumentId;
  /** Buffered field names and values, as drained. */
  raw: Record<string, string>;
  set: Map<string, { value: unknown; order: number; field: string }>;
  max: Map<string, { value: unknown; field: string }>;
  min: Map<string, { value: unknown; field: string }>;
  /** One `$inc` per path; its integer and non-integer sums were buffered apart. */
  inc: Map<string, { value: unknown; fields: string[] }>;
}

/** Groups drained `[field, value]` pairs by document; bookkeeping fields (`#...`) are skipped. */
export function groupByDocument(entries: Iterable<[string, string]>): Map<string, DocumentBatch> {
  const documents = new Map<string, DocumentBatch>();
  const sums = new Map<DocumentBatch, Map<string, { integer?: string; decimal?: string; fields: string[] }>>();
  for (const [name, value] of entries) {
    if (name.startsWith('#')) continue;
    const field: BufferedField = decodeField(name);
    let document = documents.get(field.documentKey);
    if (!document) {
      document = {
        documentId: field.documentId,
        raw: {},
        set: new Map(),
        max: new Map(),
        min: new Map(),
        inc: new Map(),
      };
      documents.set(field.documentKey, document);
      sums.set(document, new Map());
    }
    document.raw[name] = value;
    switch (field.operator) {
      case OPERATOR.incInteger:
      case OPERATOR.incDecimal: {
        const pathSums = sums.get(document)!;
        const sum = pathSums.get(field.fieldPath) ?? { fields: [] };
        if (field.operator === OPERATOR.incInteger) sum.integer = value;
        else sum.decimal = value;
        sum.fields.push(name);
        pathSums.set(field.fieldPath, sum);
        break;
      }
      case OPERATOR.max:
        document.max.set(field.fieldPath, { value: decodeComparable(value), field: name });
        break;
      case OPERATOR.min:
        document.min.set(field.fieldPath, { value: decodeComparable(value), field: name });
        break;
      case OPERATOR.set: {
        const { order, value: decoded } = decodeOrderedSetValue(value);
        document.set.set(field.fieldPath, { value: decoded, order, field: name });
        break;
      }
    }
  }
  for (const [document, pathSums] of sums) {
    for (const [path, sum] of pathSums)
      document.inc.set(path, { value: decodeIncrement(sum.integer, sum.decimal), fields: sum.fields });
  }
  return documents;
}
