from cfw.cli import main

main()
