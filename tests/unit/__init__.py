"""Unit tests of the pure cores (a package so test modules may share basenames with other suites)."""
