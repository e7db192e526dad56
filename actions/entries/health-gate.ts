import { main } from '../health-gate.ts';

await main();
// Everything the step reports is written by now (file commands and the summary synchronously,
// stdout to the runner's pipe synchronously on Linux); idle keep-alive sockets and timers of the
// clients must not hold the runner for another few hundred milliseconds.
process.exit();
