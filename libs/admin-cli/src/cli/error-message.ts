/** An error's message; errors from another realm (a test's module registry) are not `instanceof Error`. */
export function messageOf(error: unknown): string {
  return typeof error === 'object' && error !== null && 'message' in error ? String(error.message) : String(error);
}
