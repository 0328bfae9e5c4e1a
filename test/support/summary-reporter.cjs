/**
 * Prints one plain closing line, "jest: N passed, N failed, N skipped", that CI systems read
 * whatever the runner. Jest's own summary stays as it is above it.
 */
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const { numPassedTests, numFailedTests, numPendingTests, numTodoTests } = results;
    process.stdout.write(`jest: ${numPassedTests} passed, ${numFailedTests} failed, ${numPendingTests + numTodoTests} skipped\n`);
  }
}
module.exports = SummaryReporter;
