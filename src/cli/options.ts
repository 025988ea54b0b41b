/** Parsers for CLI option values: each rejects malformed input with a message naming the flag. */
import { LinkmuxError } from '../util/errors.js';

export function intOption(flag: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new LinkmuxError(
        'LINKMUX_ERR_USAGE',
        `${flag} takes a whole number from ${min} to ${max}, not "${value}"`,
      );
    }
    return n;
  };
}

/** A decimal number within [min, max]; `unit` names it in the error ("seconds", "Mbit/s"). */
export function numberOption(flag: string, unit: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new LinkmuxError(
        'LINKMUX_ERR_USAGE',
        `${flag} takes ${unit} from ${min} to ${max}, not "${value}"`,
      );
    }
    return n;
  };
}

export function choiceOption<T extends string>(flag: string, choices: readonly T[]) {
  return (value: string): T => {
    if (!(choices as readonly string[]).includes(value)) {
      throw new LinkmuxError(
        'LINKMUX_ERR_USAGE',
        `${flag} takes one of ${choices.join(', ')}, not "${value}"`,
      );
    }
    return value as T;
  };
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
