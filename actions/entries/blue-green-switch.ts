import { main } from '../blue-green-switch.ts';

await main();
