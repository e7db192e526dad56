import { describeMatrix } from '../support/rehearsal.ts';

// One strategy's rows of the scenario matrix (__tests__/support/rehearsal.ts); a file a strategy
// lets jest play two strategies at a time.
describeMatrix('canary');
