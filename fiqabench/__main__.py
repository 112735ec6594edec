from fiqabench.cli import main

main()
