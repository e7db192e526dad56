import { main } from '../health-gate.ts';

await main();
