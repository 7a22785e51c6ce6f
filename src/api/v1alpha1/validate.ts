import type { z } from 'zod';
import { ValidationError } from '../../shared/errors.ts';

/** Renders a zod issue path the way the API server does: `spec.transfer.ports[0].port`. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '<root>' : out;
}

export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${fieldPath(issue.path)}: ${issue.message}`);
}

/** Parses with defaults applied, or throws a ValidationError whose message lists every field path. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new ValidationError(what, formatIssues(result.error));
  return result.data;
}
