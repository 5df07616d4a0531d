"""Black-box tests over the public protocol (a package so test modules may share basenames with other suites)."""
