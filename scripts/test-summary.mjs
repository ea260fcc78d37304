// Prints the one plain line CI reads, "N passed, N failed, N skipped", from vitest's JSON report.
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
const failed = (report.numFailedTests ?? 0) + (report.numFailedTestSuites ?? 0) - countSuitesWithFailedTests(report);
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);

// A suite that failed to load has no failed tests of its own; count it once as a failure.
function countSuitesWithFailedTests(r) {
  return (r.testResults ?? []).filter(
    (suite) => suite.status === "failed" && (suite.assertionResults ?? []).some((t) => t.status === "failed"),
  ).length;
}
