/** Reading the gateway's logfmt lines in tests. */

/** The fields of every line of `log` whose message is `msg`, in order (values unquoted). */
export function logLines(log: string, msg: string): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  for (const line of log.split('\n')) {
    if (!line.includes(`msg="${msg}"`) && !line.includes(`msg=${msg} `)) continue;
    const fields: Record<string, string> = {};
    for (const m of line.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S*)/g)) fields[m[1]!] = m[2]!.replace(/^"|"$/g, '');
    out.push(fields);
  }
  return out;
}
