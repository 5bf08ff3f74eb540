/** Option parsers: a bad value is a commander usage error (exit 2) naming the option and the rule. */
import { InvalidArgumentError } from 'commander';

export function integerOption(min: number, max: number): (value: string) => number {
  return (value: string) => {
    if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError(`expected a whole number between ${min} and ${max}.`);
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number between ${min} and ${max}.`);
    return n;
  };
}

export function secondsOption(min: number, max: number): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`expected a number of seconds between ${min} and ${max}.`);
    return n;
  };
}
