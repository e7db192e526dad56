import { main } from '../canary-shift.ts';

await main();
