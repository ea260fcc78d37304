// Prints the one plain line CI reads, "N passed, N failed" (last, after a line with the skipped count),
// from vitest's JSON report.
// A missing or unreadable report means the run itself broke: that counts as a failure.
import { readFileSync } from "node:fs";

const file = process.argv[2] ?? "reports/vitest.json";
let report;
try {
  report = JSON.parse(readFileSync(file, "utf8"));
} catch (error) {
  console.log(`test report ${file} unreadable: ${error.message}`);
  console.log("0 passed, 1 failed");
  process.exit(1);
}
const passed = report.numPassedTests ?? 0;
// numFailedTestSuites also counts failed describe blocks, so it cannot be added: a file counts as one
// failure only when it failed without a failed test of its own (it did not load, or a hook threw).
const failed = (report.numFailedTests ?? 0) + countFilesFailedWithoutTests(report);
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
console.log(`${skipped} skipped`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);

function countFilesFailedWithoutTests(r) {
  return (r.testResults ?? []).filter(
    (file) => file.status === "failed" && !(file.assertionResults ?? []).some((t) => t.status === "failed"),
  ).length;
}
