/**
 * Preloaded (`node --import`) into a process the bench spawns: at exit, its own CPU time (user + system,
 * µs) goes to the file BENCH_CPU_FILE names, so the bench charges a CLI run exactly its process's CPU.
 */
import { writeFileSync } from 'node:fs';

const file = process.env.BENCH_CPU_FILE;
if (file) process.once('exit', () => writeFileSync(file, JSON.stringify(process.cpuUsage())));
