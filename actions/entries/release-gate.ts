import { main } from '../release-gate.ts';

await main();
process.exit();
