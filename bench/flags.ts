/**
 * Command-line flags of the benchmarks: `--name value` or `--name=value`, read from the arguments after
 * the script's path.
 */

export function flagValue(name: string): string | undefined {
  const args = process.argv.slice(2);
  for (const [index, arg] of args.entries()) {
    if (arg === `--${name}`) return args[index + 1];
    if (arg.startsWith(`--${name}=`)) return arg.slice(name.length + 3);
  }
  return undefined;
}

/** The numbers a flag accepts: at least `min`, or more than `above`, and at most `max`. */
export interface NumberRange {
  readonly min?: number;
  readonly above?: number;
  readonly max?: number;
}

/** How a range reads in the error: "in 1..10" with a maximum, "a positive number", "a number >= 1". */
function describeRange({ min, above, max }: NumberRange): string {
  if (max !== undefined) return `in ${min ?? above}..${max}`;
  if (above === 0) return "a positive number";
  return above !== undefined ? `a number > ${above}` : `a number >= ${min}`;
}

/** The flag's number, or `fallback` when it is absent; throws "--name must be ..." when it is out of `range`. */
export function numberFlag(name: string, fallback: number, range: NumberRange): number {
  const raw = flagValue(name);
  const value = raw === undefined ? fallback : Number(raw);
  const { min = Number.NEGATIVE_INFINITY, above = Number.NEGATIVE_INFINITY, max = Number.POSITIVE_INFINITY } = range;
  if (!Number.isFinite(value) || value < min || value <= above || value > max) {
    throw new Error(`--${name} must be ${describeRange(range)}`);
  }
  return value;
}
