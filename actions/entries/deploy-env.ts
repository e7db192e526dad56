import { main } from '../deploy-env.ts';

await main();
