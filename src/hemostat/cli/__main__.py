from hemostat.cli import main

main()
