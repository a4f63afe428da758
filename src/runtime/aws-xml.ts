// Reads the small XML documents S3 and STS answer with (list results, credentials, errors).
const XML_ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

/**
 * The text of every `<name>` element in an AWS response. These documents are flat and known, so a pattern reads
 * them; text is decoded from the five XML entities and numeric references (Ballast's names never contain markup).
 */
export function xmlElements(xml: string, name: string): string[] {
  const out: string[] = [];
  for (const m of xml.matchAll(new RegExp(`<${name}>([\\s\\S]*?)</${name}>`, "g")))
    out.push(
      m[1]!.replace(
        /&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g,
        (_, e: string) => XML_ENTITIES[e] ?? String.fromCodePoint(Number(e.startsWith("#x") ? `0x${e.slice(2)}` : e.slice(1))),
      ),
    );
  return out;
}
