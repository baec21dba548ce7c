// The package is "type": "module", so Node would read dist/cjs/*.js as ESM; a package.json in
// each build directory tells Node which module system the files there use.
import { writeFileSync } from "node:fs";

writeFileSync(new URL("../dist/cjs/package.json", import.meta.url), '{ "type": "commonjs" }\n');
writeFileSync(new URL("../dist/esm/package.json", import.meta.url), '{ "type": "module" }\n');
