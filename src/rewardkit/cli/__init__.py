"""The ``rewardkit`` command line: one thin command per library function."""
