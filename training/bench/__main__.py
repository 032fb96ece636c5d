"""`python -m training.bench`: the training-speed benchmark (train_speed)."""

from training.bench.train_speed import main

if __name__ == "__main__":
    main()
