"""What an operator does to a protected application, apart from the command line: onboarding
(register, unregister, refresh the AMI), status, maintenance, resume, and the rehearsal of a
drill. Nothing here knows about the CLI: every function takes ``client(service)`` (a callable
that returns boto3 clients) and the deployed stack's outputs, so the CLI, the emulator and
the tests share one implementation.
"""
