/** The slice of a logger the core uses; Nest's `Logger` fits it as it is. */
export interface LockLogger {
  debug?(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export const silentLogger: LockLogger = { warn() {}, error() {} };
