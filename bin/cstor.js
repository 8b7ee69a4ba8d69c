#!/usr/bin/env node
// The `cstor` command: loads the TypeScript dispatcher through tsx, so no build step is needed.
import { register } from 'tsx/esm/api';

register();
const { run } = await import('./cstor.ts');
await run(process.argv.slice(2));
