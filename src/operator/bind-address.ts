/** Parses controller-runtime's bind address flags: "host:port", ":port" (all interfaces) or "0" (off). */
export function parseBindAddress(flag: string, value: string): { host: string; port: number } | undefined {
  if (value === "0") return undefined;
  const m = /^(.*):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new Error(`${flag}: "${value}" must be host:port, :port or 0 (off)`);
  return { host: m[1] || "0.0.0.0", port };
}
