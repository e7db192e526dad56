import { main } from '../notify.ts';

await main();
