// Long statements read better with named parameters: `$branch` instead of `$7`. This turns a text
// with `$name` placeholders and a record of values into pg's positional form. Every name must
// have a value, so a typo fails before anything is sent. With `types`, every use of a parameter
// is cast (`($1::float8[])`), so PostgreSQL never has to guess one from how it is used.

export function namedSql(text: string, params: Record<string, unknown>, types: Record<string, string> = {}): { text: string; values: unknown[] } {
  const names: string[] = [];
  const out = text.replace(/\$([a-zA-Z][a-zA-Z0-9]*)/g, (_, name: string) => {
    if (!(name in params)) throw new Error(`no value for the statement's parameter $${name}`);
    let i = names.indexOf(name);
    if (i < 0) i = names.push(name) - 1;
    const type = types[name];
    return type ? `($${i + 1}::${type})` : `$${i + 1}`;
  });
  return { text: out, values: names.map((n) => params[n]) };
}
