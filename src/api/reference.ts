// Renders the field reference of docs/api.md from the schema, so the docs never drift from the CRD.
import { defaultNote } from "./schema-kit.js";
import { ModelDeploymentSpecSchema, ModelDeploymentStatusSchema } from "./v1alpha1.js";

interface DocSchema {
  type?: string;
  description?: string;
  default?: unknown;
  enum?: string[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  pattern?: string;
  format?: string;
  required?: string[];
  properties?: Record<string, DocSchema>;
  items?: DocSchema;
  additionalProperties?: DocSchema | boolean;
  "x-kubernetes-preserve-unknown-fields"?: boolean;
  "x-kubernetes-list-type"?: string;
  "x-kubernetes-list-map-keys"?: string[];
  "x-kubernetes-validations"?: { rule: string; message: string; fieldPath?: string }[];
}

export const REFERENCE_BEGIN = "<!-- BEGIN GENERATED REFERENCE (make manifests) -->";
export const REFERENCE_END = "<!-- END GENERATED REFERENCE -->";

function typeName(s: DocSchema): string {
  if (s.type === "array") return `[]${s.items ? typeName(s.items) : "any"}`;
  if (s.type === "object" && typeof s.additionalProperties === "object") return `map[string]${typeName(s.additionalProperties)}`;
  if (s["x-kubernetes-preserve-unknown-fields"]) return "object (free-form)";
  if (!s.type && typeof s.additionalProperties !== "object") return "int-or-string";
  return s.format && s.type === "string" ? `string (${s.format})` : (s.type ?? "any");
}

function constraints(s: DocSchema, required: boolean): string {
  const out: string[] = [];
  if (required) out.push("**required**");
  if (s.enum) out.push(s.enum.map((v) => `\`${v}\``).join(" | "));
  if (s.minimum !== undefined) out.push(`${s.exclusiveMinimum ? ">" : "≥"} ${s.minimum}`);
  if (s.maximum !== undefined) out.push(`≤ ${s.maximum}`);
  if (s.minLength !== undefined && s.minLength > 0) out.push(`length ≥ ${s.minLength}`);
  if (s.maxLength !== undefined) out.push(`length ≤ ${s.maxLength}`);
  if (s.minItems !== undefined) out.push(`items ≥ ${s.minItems}`);
  if (s.maxItems !== undefined) out.push(`items ≤ ${s.maxItems}`);
  if (s.maxProperties !== undefined) out.push(`keys ≤ ${s.maxProperties}`);
  if (s["x-kubernetes-list-map-keys"]) out.push(`unique by ${s["x-kubernetes-list-map-keys"].join(", ")}`);
  if (s.pattern) out.push(`pattern \`${s.pattern}\``);
  return out.join("; ");
}

function cell(text: string): string {
  return text.replaceAll("\n", " ").replaceAll("|", "\\|");
}

// Descriptions say "pvc://<claim>/<path>"; Markdown renderers would take <claim> for an HTML tag.
function prose(text: string): string {
  return cell(text).replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

// The table has a default column; the description's "Default: …" sentence is for kubectl explain.
function withoutDefaultNote(schema: DocSchema): string {
  const note = schema.default === undefined ? "" : defaultNote(schema.default);
  const text = schema.description ?? "";
  return note && text.endsWith(note) ? text.slice(0, -note.length) : text;
}

function rows(schema: DocSchema, path: string, required: boolean, out: string[], rules: string[]): void {
  const def = schema.default === undefined ? "" : `\`${JSON.stringify(schema.default)}\``;
  if (path) out.push(`| \`${path}\` | ${typeName(schema)} | ${def} | ${cell(constraints(schema, required))} | ${prose(withoutDefaultNote(schema))} |`);
  const child = schema.type === "array" ? schema.items : schema;
  const prefix = schema.type === "array" ? `${path}[]` : path;
  const validations = [
    ...(schema["x-kubernetes-validations"] ?? []).map((v) => ({ ...v, base: path })),
    ...(schema.type === "array" ? (child?.["x-kubernetes-validations"] ?? []).map((v) => ({ ...v, base: prefix })) : []),
  ];
  for (const v of validations) {
    const at = v.fieldPath ? `${v.base}${v.fieldPath}` : v.base;
    rules.push(`| \`${at}\` | ${prose(v.message)} | \`${cell(v.rule)}\` |`);
  }
  for (const [key, sub] of Object.entries(child?.properties ?? {})) {
    rows(sub, prefix ? `${prefix}.${key}` : key, child?.required?.includes(key) ?? false, out, rules);
  }
}

/** Markdown tables for spec, status and the cross-field (CEL) rules, between the generated markers. */
export function renderApiReference(): string {
  const header = "| field | type | default | constraints | description |\n|---|---|---|---|---|";
  const spec: string[] = [];
  const status: string[] = [];
  const rules: string[] = [];
  rows(JSON.parse(JSON.stringify(ModelDeploymentSpecSchema)) as DocSchema, "spec", true, spec, rules);
  rows(JSON.parse(JSON.stringify(ModelDeploymentStatusSchema)) as DocSchema, "status", false, status, []);
  return [
    REFERENCE_BEGIN,
    "",
    "### spec",
    "",
    header,
    ...spec,
    "",
    "### status",
    "",
    header,
    ...status,
    "",
    "### Validation rules (CEL, checked by the API server)",
    "",
    "| field | message | rule |",
    "|---|---|---|",
    ...rules,
    "",
    REFERENCE_END,
  ].join("\n");
}

/** Replaces the generated section of a docs/api.md text with the current reference. */
export function updateApiReference(markdown: string): string {
  const begin = markdown.indexOf(REFERENCE_BEGIN);
  const end = markdown.indexOf(REFERENCE_END);
  if (begin < 0 || end < begin) throw new Error(`docs/api.md: markers ${REFERENCE_BEGIN} … ${REFERENCE_END} not found`);
  return markdown.slice(0, begin) + renderApiReference() + markdown.slice(end + REFERENCE_END.length);
}
