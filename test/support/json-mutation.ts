// Near-miss inputs for property tests: a valid JSON document with one value somewhere replaced by anything. Fully
// random documents rarely get past a parser's first check; one wrong field deep inside a good one does.
import fc from "fast-check";

/** Values a JSON body can hold, weighted toward the edges: huge and tiny numbers, special keys and strings. */
export const edgeValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(0, -0, 1e308, -1e308, 5e-324, 2 ** 53 + 1, -1, 0.5, "", "NaN", "1e309", "__proto__", "toString", null, true, false),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 8 }),
);

/** Any JSON value, small and shallow. */
export const anyJson: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    edgeValue,
    fc.array(tie("v"), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 6 }), tie("v"), { maxKeys: 4 }),
  ),
})).v;

/** Every path to a value inside `doc` (the root is the empty path). */
function pathsOf(doc: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(prefix);
  if (Array.isArray(doc)) doc.forEach((v, i) => pathsOf(v, [...prefix, i], out));
  else if (typeof doc === "object" && doc !== null) for (const [k, v] of Object.entries(doc)) pathsOf(v, [...prefix, k], out);
  return out;
}

/** A deep copy of `doc` with the value at its `pick`-th path (modulo their number) replaced, or deleted when `replacement` is undefined. */
export function mutateAt(doc: unknown, pick: number, replacement: unknown): unknown {
  const copy = structuredClone(doc);
  const paths = pathsOf(copy);
  const path = paths[pick % paths.length]!;
  if (path.length === 0) return replacement;
  let parent = copy as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  const last = path.at(-1)!;
  if (replacement === undefined && !Array.isArray(parent)) delete parent[last];
  else parent[last] = replacement;
  return copy;
}

/** Documents from `valid`, most of them with one value replaced by anything (or a key deleted). */
export function nearMiss<T>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> {
  return fc.oneof(
    { arbitrary: valid, weight: 1 },
    { arbitrary: fc.tuple(valid, fc.nat(), fc.oneof(anyJson, fc.constant(undefined))).map(([doc, pick, v]) => mutateAt(doc, pick, v)), weight: 4 },
  );
}
