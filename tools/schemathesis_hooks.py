"""Schemathesis hooks for the local run (loaded through SCHEMATHESIS_HOOKS).

`cargo lambda watch`, the local stand-in for API Gateway, answers 500 by itself, without
invoking the function, to a header or a body whose bytes are not UTF-8. Those cases test the
emulator, not the service, so they are skipped; every other generated case, valid or not, is
sent. (The function's own handling of a non-UTF-8 body, a 400, is tested under the runtime
interface emulator in functions/generate-single/tests/e2e.rs.)
"""

import schemathesis


def _utf8(value):
    if isinstance(value, (bytes, bytearray)):
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


@schemathesis.hook
def filter_case(context, case):
    headers = case.headers or {}
    if not all(isinstance(value, str) and value.isascii() for value in headers.values()):
        return False
    return _utf8(case.body)
