// Verify webhook bodies the way Sentry's docs do in Node: HMAC-SHA256 of JSON.stringify(<the parsed body>).
// Reads [{secret, body, signature}, ...] as JSON from the file named by argv[2]; prints [true|false, ...].
const crypto = require("crypto");
const fs = require("fs");

const cases = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const verdicts = cases.map(({ secret, body, signature }) =>
  crypto.createHmac("sha256", secret).update(JSON.stringify(JSON.parse(body))).digest("hex") === signature);
process.stdout.write(JSON.stringify(verdicts));
