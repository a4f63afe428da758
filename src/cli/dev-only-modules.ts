// `ballast dev` and `ballast demo` need packages that only a checkout's `npm ci` installs (@peculiar/x509,
// reflect-metadata, vega-datasets are devDependencies); the image ships production dependencies only.
// There the commands say so in one line instead of a module-resolution stack trace.

/** Loads a module of a checkout-only command; a missing npm package becomes a one-line error naming it. */
export async function loadDevOnlyModule<T>(command: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    const missing = missingPackage(err);
    if (!missing) throw err;
    throw new Error(
      `\`ballast ${command}\` needs the package ${missing}, a development dependency this installation does not have ` +
        "(the Ballast image ships production dependencies only): run it from a Ballast checkout after `npm ci`",
      { cause: err },
    );
  }
}

function missingPackage(err: unknown): string | undefined {
  if (!(err instanceof Error) || (err as NodeJS.ErrnoException).code !== "ERR_MODULE_NOT_FOUND") return undefined;
  // Only a missing package; a missing file of Ballast's own is a broken install and keeps its message.
  return /Cannot find package '([^']+)'/.exec(err.message)?.[1];
}
