/**
 * `deliver --checkpoint FILE`: where a run stands, so a killed run (kill -9, a lost machine process) can
 * be resumed without losing a line or sending again more than a bounded window.
 *
 * Outcomes come out of input order, so one number is not enough. The file (JSON, replaced atomically:
 * written to a temporary file, then renamed over it) says:
 *   done_through  every line up to here has its outcome printed (and its dead letter written);
 *   done_after    ranges of lines above done_through that have theirs too;
 *   sent_before   no line from here on was sent or given an outcome: written before a delivery (or an
 *                 outcome) past it;
 *   complete      the input was read to its end and every line has an outcome.
 * A line counts as done only once its outcome has been handed to stdout and its dead letter (when it
 * failed) is in the dead-letter file. Running the same command again resumes: done lines are passed
 * over; lines below sent_before that are not done were in flight when the run stopped — they are sent
 * again and their outcomes flagged possibly_duplicated.
 */
import { readFileSync, renameSync, rmSync, statSync, type Stats, writeFileSync } from 'node:fs';
import { CliError, describeFsError, displayPath, resolvePath, type CliIO } from './io.js';

export const CHECKPOINT_VERSION = 1;

interface CheckpointFile {
  checkpoint_version: number;
  events: string;
  integration: string;
  done_through: number;
  done_after: [number, number][];
  sent_before: number;
  complete: boolean;
  updated_at: string;
}

function statOrUndefined(p: string): Stats | undefined {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
}

const isLine = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/** The ranges of a set of line numbers: [[first, last], ...], ascending. */
function ranges(set: ReadonlySet<number>): [number, number][] {
  const out: [number, number][] = [];
  for (const n of [...set].sort((a, b) => a - b)) {
    const last = out[out.length - 1];
    if (last && last[1] === n - 1) last[1] = n;
    else out.push([n, n]);
  }
  return out;
}

export interface ResumeInfo {
  /** The first line not done. */
  from: number;
  /** Lines above it already done. */
  doneAbove: number;
  /** Lines an interrupted run may have sent without an outcome: [first, last) of the window. */
  window?: [number, number];
  complete: boolean;
}

export class Checkpoint {
  private doneThrough = 0;
  private readonly doneAbove = new Set<number>();
  private sentBefore = 1;
  private complete = false;
  /** What the file said when this run started (lines it calls done are passed over). */
  private readonly startDoneThrough: number;
  private readonly startDoneAbove: ReadonlySet<number>;
  private readonly priorSentBefore: number;
  private readonly tmp: string;
  readonly resume?: ResumeInfo;

  private constructor(
    private readonly abs: string,
    readonly shown: string,
    private readonly meta: { events: string; integration: string },
    prior: CheckpointFile | undefined,
  ) {
    this.tmp = `${abs}.${process.pid}.tmp`;
    if (prior) {
      this.doneThrough = prior.done_through;
      for (const [a, b] of prior.done_after) for (let n = a; n <= b; n++) if (n > this.doneThrough) this.doneAbove.add(n);
      this.sentBefore = Math.max(prior.sent_before, this.doneThrough + 1);
      this.complete = prior.complete;
      const from = this.doneThrough + 1;
      const unknown = prior.sent_before > from ? [from, prior.sent_before] as [number, number] : undefined;
      this.resume = { from, doneAbove: this.doneAbove.size, ...(unknown ? { window: unknown } : {}), complete: prior.complete };
      this.complete = false; // until this run has read to the end again
    }
    this.startDoneThrough = this.doneThrough;
    this.startDoneAbove = new Set(this.doneAbove);
    this.priorSentBefore = prior?.sent_before ?? 0;
  }

  /**
   * Open FILE: resume from it when it exists (it must be for the same events and integration), else
   * start at line 1 — or at `fromLine` when given, which overrides what the file says.
   */
  static open(io: CliIO, file: string, meta: { events: string; integration: string }, fromLine?: number, others: { path: string; option: string }[] = []): Checkpoint {
    const abs = resolvePath(io, file);
    const shown = displayPath(io, abs);
    // The checkpoint is replaced wholesale: never over the events or the dead letters.
    const here = statOrUndefined(abs);
    for (const o of others) {
      const there = statOrUndefined(o.path);
      if (o.path === abs || (here && there && here.dev === there.dev && here.ino === there.ino)) {
        throw new CliError(`--checkpoint '${shown}' is the ${o.option} file: the checkpoint must be a file of its own`);
      }
    }
    let prior: CheckpointFile | undefined;
    if (here) {
      let parsed: unknown;
      try {
        const text = readFileSync(abs, 'utf8');
        if (text.length > 1024 * 1024) throw Object.assign(new Error('too large'), { code: 'larger than 1 MiB: not a checkpoint' });
        parsed = JSON.parse(text);
      } catch (e) {
        throw new CliError(`checkpoint '${shown}' cannot be read: ${e instanceof SyntaxError ? 'not valid JSON' : describeFsError(e)} (left as it is: give another --checkpoint path, or delete it if it is a stale checkpoint)`);
      }
      prior = Checkpoint.check(parsed, shown);
      if (prior.events !== meta.events || prior.integration !== meta.integration) {
        throw new CliError(
          `checkpoint '${shown}' belongs to another run (events '${prior.events}' through '${prior.integration}'); ` +
            `give another --checkpoint file, or delete this one to start over`,
        );
      }
    }
    if (fromLine !== undefined) {
      // An explicit start line wins over the file: the operator decides where this run starts.
      prior = { checkpoint_version: CHECKPOINT_VERSION, ...meta, done_through: fromLine - 1, done_after: [], sent_before: fromLine, complete: false, updated_at: '' };
    }
    const cp = new Checkpoint(abs, shown, meta, prior);
    const err = cp.save();
    if (err) throw new CliError(`cannot write checkpoint '${shown}': ${err === 'file not found' ? 'its folder does not exist' : err}`);
    return cp;
  }

  private static check(v: unknown, shown: string): CheckpointFile {
    const o = v as Partial<CheckpointFile> | null;
    const bad = (what: string): never => {
      throw new CliError(`checkpoint '${shown}' is not a deliver checkpoint: ${what} (left as it is: give another --checkpoint path, or delete it if it is a stale checkpoint)`);
    };
    if (typeof o !== 'object' || o === null || Array.isArray(o)) return bad('not a JSON object');
    if (o.checkpoint_version !== CHECKPOINT_VERSION) bad(`checkpoint_version is not ${CHECKPOINT_VERSION}`);
    if (typeof o.events !== 'string' || typeof o.integration !== 'string') bad('events or integration missing');
    if (!isLine(o.done_through) || !isLine(o.sent_before)) bad('done_through or sent_before is not a line number');
    if (!Array.isArray(o.done_after) || !o.done_after.every((r) => Array.isArray(r) && r.length === 2 && isLine(r[0]) && isLine(r[1]) && r[0] <= r[1])) {
      bad('done_after is not a list of [first, last] line ranges');
    }
    if (o.done_after!.reduce((n, [a, b]) => n + (b - a + 1), 0) > 10_000_000) bad('done_after is too large');
    return { ...(o as CheckpointFile), complete: o.complete === true };
  }

  /** Done by the run that wrote the file: pass over. */
  passes(line: number): boolean {
    return line <= this.startDoneThrough || this.startDoneAbove.has(line);
  }

  /** An earlier run may have sent this line without reporting its outcome. */
  maybeSent(line: number): boolean {
    return line < this.priorSentBefore && !this.passes(line);
  }

  markDone(line: number): void {
    if (line <= this.doneThrough) return;
    this.doneAbove.add(line);
    while (this.doneAbove.delete(this.doneThrough + 1)) this.doneThrough++;
  }

  /** Before `line` is sent or printed: make sure the file says it may have been (reserving `ahead` lines at a time). */
  reserve(line: number, ahead: number): string | undefined {
    if (line < this.sentBefore) return undefined;
    this.sentBefore = line + Math.max(1, ahead);
    return this.save();
  }

  /** The run is over and read no further than `lastLine`: nothing past it was sent. */
  settle(lastLine: number): void {
    this.sentBefore = Math.min(this.sentBefore, lastLine + 1);
  }

  /** Every line read so far is done and the input is at its end. */
  finish(lastLine: number): boolean {
    this.complete = this.doneThrough >= lastLine && this.doneAbove.size === 0;
    return this.complete;
  }

  get through(): number {
    return this.doneThrough;
  }
  get above(): number {
    return this.doneAbove.size;
  }

  /** Replace the file atomically; the error as the operator should read it, or undefined. */
  save(): string | undefined {
    const state: CheckpointFile = {
      checkpoint_version: CHECKPOINT_VERSION,
      events: this.meta.events,
      integration: this.meta.integration,
      done_through: this.doneThrough,
      done_after: ranges(this.doneAbove),
      sent_before: Math.max(this.sentBefore, this.doneThrough + 1),
      complete: this.complete,
      updated_at: new Date().toISOString(),
    };
    try {
      writeFileSync(this.tmp, JSON.stringify(state) + '\n');
      renameSync(this.tmp, this.abs);
      return undefined;
    } catch (e) {
      try {
        rmSync(this.tmp, { force: true });
      } catch {
        // the error that matters is the write's
      }
      return describeFsError(e);
    }
  }
}
