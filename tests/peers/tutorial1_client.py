# tutorial1_client.py: tutorial 1's client.py ("Python and Data Network
# Programming"), final form: create a socket, resolve www.google.com,
# connect to port 80, send an HTTP request, print the reply, close.
# Written in Python 3 as the tutorial's steps describe; the only deviation
# is the two environment variables marked "test hook", so tests can point
# it at a loopback peer instead of Google.

import os  # test hook
import socket  # for sockets
import sys  # for exit

try:
    # create an AF_INET, STREAM socket (TCP)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
except socket.error as msg:
    print('Failed to create socket. Error: ' + str(msg))
    sys.exit(1)

print('Socket Created')

host = 'www.google.com'
host = os.environ.get('TUTORIAL_HOST', host)  # test hook
port = 80
port = int(os.environ.get('TUTORIAL_PORT', port))  # test hook

try:
    remote_ip = socket.gethostbyname(host)
except socket.gaierror:
    # could not resolve
    print('Hostname could not be resolved. Exiting')
    sys.exit(1)

print('Ip address of ' + host + ' is ' + remote_ip)

# Connect to remote server
s.connect((remote_ip, port))

print('Socket Connected to ' + host + ' on ip ' + remote_ip)

# Send some data to remote server
message = "GET / HTTP/1.1\r\n\r\n"

try:
    # Send the whole string
    s.sendall(message.encode())
except socket.error:
    # Send failed
    print('Send failed')
    sys.exit(1)

print('Message send successfully')

# Now receive data
reply = s.recv(4096)

print(reply.decode())

# close the socket
s.close()
