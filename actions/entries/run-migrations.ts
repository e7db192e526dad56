import { main } from '../run-migrations.ts';

await main();
