/** What went wrong, for a person: gatehouse's message (a 429's says how long to wait) and each invalid field's problems. */
export function describe(e: unknown): string {
  if (e instanceof GatehouseError) {
    const fields = Object.entries(e.fields).map(([field, problems]) => `${field}: ${problems.join(", ")}`);
    return [e.message, ...fields].join(". ");
  }
  if (e instanceof Error) return e.message;
  return String(e);
}
