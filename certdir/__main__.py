from certdir.cli import main

main()
