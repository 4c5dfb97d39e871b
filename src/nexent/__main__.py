from nexent.cli import main

main()
