/**
 * Preloaded (`node --import`) into the sample-app processes that the demo and the e2e tests start.
 * Their stdin is a pipe from the parent, so end-of-file on it means the parent is gone, even if it
 * was SIGKILLed: the instance then shuts down (gracefully, via SIGTERM) instead of living on as
 * an orphan. Only for processes started with a piped stdin.
 */
process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM'));
process.stdin.resume();
// Watching the pipe must not keep an instance alive that is otherwise done.
(process.stdin as { unref?: () => void }).unref?.();
